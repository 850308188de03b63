"""A small shipped word list for the gibberish score: no download, no dictionary package.

ENGLISH holds common English words in their base forms (inflections are stripped before the
lookup), TECH the words of code, configs and operations, and STOPWORDS the function words of
several languages: a text whose words are mostly another language's function words is language,
not noise, even when no English word occurs in it.
"""

from __future__ import annotations

ENGLISH = """
a about above accept access according account across act action active activity actually add address
admin after afternoon again against age agent ago agree agreement ahead air all allow almost alone along
already also although always am amount an analysis and animal another answer any anyone anything
anyway apart appear apple application apply approach april area argue arm around arrive art article
as ask assume at attack attention august author available average avoid away baby back bad bag bake
balance ball bank bar base basic basis be bear beat beautiful because become bed before begin behavior
behind believe below benefit best better between beyond big bill bird bit black blank block blood blue
board boat body book both bottom box boy brain branch bread break breakfast bridge brief bright bring
broad broken brother brown budget build building burn bus business busy but buy by cafe call calm camera
campaign can cancel candidate capital car card care career carry case cat catch cause cell center
central century certain chain chair challenge chance change channel chapter character charge cheap
check chicken chief child choice choose church circle citizen city civil claim class clean clear client
climate clock close cloud club coast coat code coffee cold collect college color come comfort command
comment common community company compare complete computer concern condition conference confirm connect
consider contain content context continue contract control cook cool copy corner correct cost could
count country couple course court cover create credit crime crop cross cultural culture cup current
customer cut cycle daily damage dark data date daughter day dead deal dear death debate december decide
decision deep default defense degree delay deliver delivery demand department depend describe design
desk detail determine develop device did die difference different difficult dinner direct direction
discover discuss disease distance do doctor document does dog dollar done door double down draw dream
dress drink drive drop drug dry during duty each early earn earth easy eat economic economy edge
education effect effort egg eight either election else email employee end enemy energy engine enjoy
enough enter entire environment equal error escape especially establish estimate even evening event
ever every everyone everything evidence exact exactly example except exchange exist expect expensive
experience expert explain express extra eye face fact factor fail fair fall family famous far farm
fast father fear feature february fee feel few field fight figure file fill film final finally find
fine finger finish fire firm first fish fit five fix flat floor flow flower fly focus follow food foot
for force foreign forest forget form forward four free fresh friday friend from front fruit full fun
function future game garden gas general generation get gift girl give glad glass go goal good
government great green ground group grow growth guess gun guy hair half hand handle hang happen happy
hard hat have he head health hear heart heat heavy hello help her here herself hey hi high him himself
his history hit hold holiday home hope horse hospital hot hotel hour house how however huge human
hundred hungry husband i idea identify if image imagine impact important improve in include income
increase indeed indicate individual industry information inside instead institution interest
international interview into invoice involve island issue it item its itself january job join journey
july jump june just keep key kid kill kind king kitchen know knowledge lady lake land language large
last late later laugh law lawyer lay lead leader learn least leave left leg legal less lesson let
letter level library lie life light like likely limit line link list listen little live local long
look lose loss lot love low lunch machine magazine main maintain major make man manage manager many
map march mark market marriage material matter may maybe me mean measure media medical meet meeting
member memory mention message method middle might mile military milk million mind minute miss
mission model modern moment monday money month moon more morning most mother move movie much music
must my myself name nation national natural nature near nearly necessary neck need network never
new news newspaper next nice night nine no nobody none nor normal north not note nothing notice
november now number nurse object observe obtain occur ocean october of off offer office officer often
oil ok okay old on once one only onto open operation opinion option or order organization other
others our out outside over own owner page pain paint paper parent park part particular partner party
pass past patient pattern pay payment peace people per percent perform performance perhaps period
person personal phone photo physical pick picture piece place plan plane plant play player please
point police policy political poor popular population position positive possible post pound power
practice prepare present president press pressure pretty prevent price print private probably problem
process produce product production professional program project property protect prove provide public
pull purpose push put quality quarter question quick quickly quiet quite race radio rain raise range
rate rather reach read ready real reality realize really reason receive recent recently recognize
record red reduce reflect refund region relate relationship release remain remember remove repeat
replace reply report represent request require research resource respond response rest result return
reveal review rich ride right ring rise risk river road rock role room rule run safe sale salt same
saturday save say scene school science score sea season seat second section security see seek seem
sell send senior sense separate september series serious serve service set seven several shake shall
share she ship shirt shoe shop short shot should shoulder show side sign signal similar simple simply
since sing single sister sit site situation six size skill skin sky sleep slow small smile snow so
social society soft software soldier some somebody someone something sometimes son song soon sorry
sort sound source south space speak special specific speech spend sport spring staff stage stand
standard star start state statement station stay step still stock stop store story strategy street
strong structure student study stuff style subject success successful such sudden suffer sugar suggest
summer sun sunday support sure surface system table take talk task tax tea teach teacher team
technology telephone television tell ten tend term test than thank thanks that the their them
themselves then theory there these they thing think third thirty this those though thought thousand
three through throughout throw thursday thus ticket time tired title to today together tomorrow
tonight too tool top total touch toward town track trade traffic train training travel treat tree
trial trip trouble true truth try tuesday turn twelve twenty twice two type under understand unit
until up upon urgent us use user usual usually valley value various very victim view village visit
voice vote wait walk wall want war warm wash watch water way we weak wear weather website wednesday
week weekend weight welcome well west what whatever wheel when where whether which while white who
whole whom whose why wide wife will win window winter wish with within without woman wonder wood word
work worker world worry would write wrong yard yeah year yellow yes yesterday yet you young your
yourself zero
able absolute abstract accurate achieve acid acquire across actor adapt adequate adjust admit adult
advance advantage advice affair afford afraid agency aggressive aid aim alarm album alive alternative
amazing among ancient angle angry announce annual anxiety apartment apparent appeal appointment
appreciate appropriate approve approximately architect argument arise armed army arrange arrest
artist aside aspect assess asset assist associate assumption atmosphere attach attempt attend attitude
attract audience authority automatic automatically autumn award aware awful background bake band barely
battery battle beach bean beauty bedroom beer beg beginning being belong belt bench bend beneath
besides bet bike billion birth birthday bitter blame blind bomb bond bone bonus boot border borrow
boss bother bottle bound bowl brand brave breath breathe brick brief briefly brilliant broadcast
brush bubble bug bunch burden button cabinet cable cake calculate campus cancer cap capable capacity
captain capture carbon careful carpet cash castle casual category ceiling celebrate certainly chamber
champion channel chaos chapter charity chart chase cheese chemical chest chocolate cinema circumstance
cite clause climb clinic clothes coach collapse colleague column combination combine comedy
comfortable commercial commission commit committee communicate comparison compete competition complain
complex component concept conclude conclusion concrete confidence confident confidential conflict
confuse congress connection conscious consequence conservative considerable consistent constant
construct consume consumer contact contemporary contest contribute convert convince cooking cope core
corporate cotton council counter county courage cousin crack craft crash crazy cream creative creature
crew crisis criteria critical crowd crucial cry cure curious currency curve custom dance danger
dangerous database deadline debt decade declare decline decrease deeply define definitely definition
delete deliberately delicious democracy deny deposit depth deputy derive desert deserve desire
despite destroy destruction detect developer diet differ digital dimension dirty disaster discipline
discount dish dismiss display distinct distribute district divide division divorce domestic dominate
draft drama dramatic drawing dress driver duration dust eager ease east eastern edit edition editor
effective efficient elderly electric electronic element eliminate embrace emerge emergency emotion
emphasis empire employ employer empty enable encourage engage engineer engineering enhance ensure
enterprise entertainment enthusiasm entrance entry episode equipment era essay essential estate
ethnic evaluate eventually evolution examine excellent excited exciting executive exercise exhibition
expand expansion expectation expense explore explosion export expose extend extensive extent external
extreme fabric facility faith false fan fancy fantastic fashion fat fault favor favorite federal
fellow female fence festival fiction fifteen fifth fifty finance financial finding fishing fitness
flag flight float flood fold folk football forever formal former formula fortune forty foundation
fourth frame framework frequent frequently friendly frozen fuel fully fund fundamental funny furniture
gain gallery gap gate gather gay gaze gender gene generally generous genetic gentle gently genuine
giant glance global glove god gold golden golf grab grade gradually grain grand grandfather grandmother
grant grass grateful grave gray guarantee guard guest guide guilty habit hall handful happiness
harbor hardly harm hate headline heal healthy hearing heaven height hell hero hers hesitate hide
highly highway hill hire historic historical hockey hole holy homeless honest honey honor horizon
horrible host household housing ice ideal illegal illness illustrate immediate immediately immigrant
implement implication imply import impose impossible impress impression impressive incident including
incorporate incredible independent index indicate infection inflation influence inform initial
initiative injury inner innocent innovation input inquiry insist inspire install instance instruction
instrument insurance intellectual intelligence intend intense intention interaction interesting
internal internet interpret interpretation intervention introduce introduction invest investigate
investment investor invite iron jacket jail jet jewelry joint joke journal journalist joy judge
judgment juice jury justice justify killer kiss knee knife knock label labor lack landscape lane
largely laser latter launch layer lean leather lecture length lens liberal license lift likewise
limited lip liquid literally literature load loan location lock logic lonely loose lord lovely lower
luck lucky mad mail mainly majority makeup male mall manner manufacturer margin marine massive master
match mate math maximum meal meaning meanwhile meat mechanism medicine medium membership mental menu
merely mess metal meter middle midnight milk mine minimum minister minor minority miracle mirror
mistake mix mixture mobile mode moderate modest monitor mood moral moreover mortgage mostly motion
motivation motor mount mountain mouse mouth movement mud muscle museum musical mutual mystery naked
narrative narrow nasty native naval negative negotiate neighbor neighborhood neither nervous nest net
neutral nevertheless newly nod noise nominee nonetheless noon norm northern nose notion novel nowhere
nuclear numerous nut objective obligation obvious obviously occasion occasionally odd odds offense
offensive official onion ongoing online opening operate operator opponent opportunity oppose
opposite orange ordinary organic organize origin original otherwise ought ourselves outcome output
overall overcome overlook owe ownership pace pack package pair palace pale pan panel panic parking
participant participate particularly partly passage passenger passion password patch path patience
pause peak pen penalty pension pepper perceive perception perfect perfectly permanent permission
permit persuade phase phenomenon philosophy phrase pile pilot pin pink pipe pitch plastic plate
platform pleasure plenty plot pocket poem poet poetry pole poll pollution pool pop portion portrait
possibility possibly pot potato potential pour poverty powerful practical pray prayer precisely
predict preference pregnant premium presence preserve presidential previous previously pride priest
primarily primary prime principal principle prior priority prison prisoner privacy prize procedure
profession professor profile profit profound progress prominent promise promote prompt proof proper
properly proportion proposal propose prospect protection protein protest proud psychological
psychology publication publish purchase pure pursue puzzle qualify quantity queen quote rapid rapidly
rare rarely rating ratio raw reader readily realistic reasonable recall recipe recommend recommendation
recover recovery reduction refer reference reform refrigerator regard regarding regardless regime
register regular regularly regulation reject relative relatively relax relevant relief religion
religious rely remaining remarkable remind remote rent repair representative reputation rescue
reserve resident resist resistance resolution resolve resort respect responsibility responsible
restaurant restore restriction retain retire retirement rice rid rifle rival romantic roof root rope
rose rough roughly round route routine row royal rub ruin rural rush sad salad salary sample sand
sandwich satellite satisfaction satisfy sauce scale scared schedule scheme scholar scholarship
scientific scientist scope screen script sector secret secretary seed segment seize select selection
sensitive sentence sequence server session settle settlement setup severe sex shadow shallow shame
shape sharp sheet shelf shell shelter shift shine shoot shore shortly shout shrug shut shy sick sight
significant significantly silence silent silver sin sink sir sit skip sky slave slice slide slight
slightly slip smart smell smoke smooth snap soccer sock soil solar sole solid solution solve somehow
somewhat soul soup spare speaker species spin spirit spiritual split spokesman spot spread square
squeeze stable stadium stair stake stare statistics status steady steal steel stick stiff stomach stone
storage storm straight strange stranger stream strength stress stretch strict strike string strip
stroke struggle studio stupid submit substance substantial suburb succeed sufficient suicide suit
suitable sum summary summer summit super supply supporter suppose supposed supreme surgery surprise
surprised surprising surprisingly surround survey survival survive suspect sustain swear sweep sweet
swim swing switch symbol symptom tablespoon tackle tale tall tank tap tape target taste teaching tear
teaspoon technical technique teen teenager telescope temperature temporary tendency tennis tension tent
terrible territory terror terrorist testing text thanks theater theme therapy thereby therefore thick
thin thirty thread threat threaten throat ticket tight tiny tip tire tissue tobacco toe toilet
tolerate tomato tone tongue tooth topic toss tough tour tourist tournament towel tower toy tradition
traditional tragedy trail transfer transform transition translate translation transport trap trash
tremendous trend tribe trick troop truck truly trust tunnel twin typical typically ugly ultimate
ultimately unable uncle undergo unemployment unfortunately uniform union unique universal universe
university unknown unless unlike unlikely upper urban urge useful valuable variable variation variety
vast vegetable vehicle venture version versus vessel veteran via victory video viewer violence
violent virtual virtually virtue visible vision visitor visual vital volume volunteer vulnerable wage
wake wander warn warning waste wave wealth wealthy weapon wedding weekly weigh weird welfare western
wet whereas whisper wild wildlife willing wind wine wing winner wipe wire wisdom wise witness wooden
worth wound wrap writer writing yield youth zone
given found built made taken written sent shown known done gone seen begun broken chosen drawn driven
eaten fallen forgotten frozen hidden held kept led left lost meant met paid read said sold spent stood
stuck taught thought told understood won wrote bought brought caught fought felt fed heard laid lit
ridden risen sat shot slept spoken stolen sung thrown woke worn became began came gave went took ran
saw knew grew drew flew threw chose spoke broke froze rose wore tore swore shook forgave
"""

TECH = """
api app args arg array async auth await backend backup bash batch bin binary bit bool boolean buffer
byte bytes cache callback char chat cli client cloud cluster cmd config console const container
cpu crud css csv ctx cuda curl daemon db debug decode def del deploy deployment dev dict diff dir
disk dns docker docs doc else elif email encode endpoint enum env eval exec exit false fetch fifo
float fn foo bar baz func gb gpu git github gpu grep gzip hash header heap host href html http https
id ids init inline int io ip iter java javascript jpg js json kb kernel key keys kv len lib linux
llm localhost log login logout loop lru main malloc max mb md5 merge meta min mkdir ml mod modules
mutex mysql nan namespace nginx nil node npm null num nvidia obj ok ollama os param params parse pdf
perf php pid pip png png pod postgres println printf proc prod proxy ptr py python quantization queue
ram readme redis regex repo req res rest root rpc rust sdk sql src ssh ssl std stderr stdin stdout
str struct sudo svg sys tcp tmp todo token tokens tokenizer true tsv txt udp ui uint uri url usb
utf util utils uuid var vec vllm void vram wiki www xml yaml yml zip len enumerate println isinstance
kwargs elif lambda async range print return import from class self none true false fibonacci numpy
pandas linspace plt np pd df sin cos pi sqrt axis xs ys dtype groupby csv readme repl
systemctl systemd journalctl nvidia smi gguf ggml llama mistral qwen gemma phi vllm ollama openai
quantized quantization prefill decode throughput latency ttft tps prometheus metrics grafana
kubernetes kubectl pod pods helm nginx uvicorn fastapi flask django pytest unittest webhook slack
timestamp timeout retry retries backoff stacktrace traceback exception runtime compile compiler
"""

# Function words of languages a self-hosted model commonly answers in (lower case).
STOPWORDS = {
    "en": """a about after all also an and any are as at be because been but by can could did do does
        for from had has have he her here him his how i if in into is it its just me more most my no not
        now of on one only or other our out so some than that the their them then there these they this
        those to up us was we were what when where which while who why will with would you your""",
    "de": """aber als am an auch auf aus bei bin bis bitte da damit dann das dass dem den der des dich
        die dir doch du ein eine einem einen einer es für hat hatte ich ihr im in ist ja kein können mit
        nach nicht noch nur ob oder sehr sich sie sind so über um und uns von vor war was wenn wie wir
        wird zu zum zur""",
    "fr": """à au aux avec ce ces cette c'est dans de des du elle en est et il ils je la le les leur mais
        me mon ne nous on ou par pas pour qu que qui sa se ses son sont sur ta te un une vous votre vos
        très été être""",
    "es": """a al como con de del el ella en es esta este hay la las le lo los más mi muy no nos o para
        pero por que se si sin su sus también un una uno y ya está son fue ser hoy""",
    "it": """a al alla anche che ci come con da dal della di e è gli ha i il in io la le lo ma mi ne non
        per più se si sono su un una uno questa questo sono alle""",
    "pt": """a ao as com como da das de do dos e é ela ele em está eu foi isso mais mas na não no nos o
        os ou para pela pelo por que se sem seu sua um uma você deve""",
    "nl": """aan al als bij dan dat de die dit door een en er het hij ik in is je maar met naar niet nog
        of om ook op te tot uit van voor was wat we wij zijn ze zij""",
    "sv": """att av de den det du en ett för från har i inte jag kan med men och om på sig som till var
        vi är""",
    "pl": """a ale bo by co do i ich jak jest jeszcze już na nie o od po się tak to w we z za że jest""",
    "tr": """bir bu da de için ile ve ama çok daha gibi ne o ki mi""",
    "fi": """ja ei on oli se ne että kun mutta tai myös hän me te he""",
    "vi": """là của và có không được các những một cho với này trong người đã""",
}

TECH_MORE = """
given parameter parameters integer attribute tuple generic declarative module specified dictionary schema
scalar extension literal alias equivalent query subclass implementation registry usage deprecated valid
cannot decorator multiple format annotation template interface configuration protocol static additional
prefix computed arbitrary validation factory generated documentation undefined terminal configured ignore
found insert directory interval iterator dynamic decorated deferred width frequency compatibility composite
compatible append indices built unicode legacy validate numeric ignored constraint sparse random update
lazy mapping entity search invalid execute socket stack interactive flattened normalized initialized
recursion specify disable underlying deprecation separator unchanged description unpack descriptor
categorical synonym syntax decimal known truncate further gradient greedy plus immutable execution
emitted masked compute concatenate plain variant quantile arrow matrix inferred actual mask precision
infer histogram executable assigned coroutine certificate explicit linear offset casting median builtin
keyword serialization contiguous instrumentation flush polymorphic layout sync populated applicable
persistence bundle allocated hook explicitly validator preceding occurrence introspection pickled render
specification representation due omitted authentication generator compression inverted spec overload
mimic normalize cookie echo inspect accessor preferred flip transaction additionally repetition
inheritance invoked convenience dependency implementation disabled density ambiguous align vary attrs
accessible digit made algorithm invariant emoji override callable web inspection diagonal mixin inherit
behave redirect identifier tracing filter functionality easier vectorized coordinate retrieved
instantiate settings mutable optionally epoch exclude percentile observation cascade parentheses
respectively monotonic oriented pending overriding unwrap subclassing offsets hierarchy alternate
interact customize updated initialization retrieve synchronous asynchronous bind sent serialize
failure persist subsequent subtype taken coerce speed transpose partition populate corresponds
interpolation shown conjunction propagate unlink partial unconstrained payload modify assignment
lifespan domain mathematical alignment flexible vector numerical magnitude covariance unbiased bucket
reset rendered renamed tutorial manipulation locale insensitive assign lookup signature annotate
rendering distinguish tag serializable addition written indent sentinel incorrect qualifier naive
affect reverse grid clip sine integral probability correlation terminate alphanumeric complement
backslash purge behaviour backward subsystem signify homogeneous heterogeneous denote intentionally
instantiated infrastructure detached verify dump utility inspected discriminator polynomial hierarchical
ascending descending fraction experimental excluded contrast alpha beta secondary dependent forbidden
pertaining designated tab executing scenario requirement dedicated integrate inverse arithmetic
inserted formatting imaginary manually hidden iterate suffix vanish pooling asynchronously synchronously
persistence redirects dimensional tabular hashable constructor algebra transform routine compiler
enhancement encoding binding permanent transparent negotiation instance yields specified subpackage
deprecated functionality serializing validating homogeneous arbitrary operations vectorized evaluation
evaluations scalar fields grids arrays element elements items item object objects class classes method
methods argument arguments default defaults optional required return returns returned raise raises
raised exception exceptions error errors warning warnings value values type types field fields key
keys index indexes string strings number numbers list lists set sets map maps function functions
variable variables constant constants boolean booleans byte bytes array arrays length size sizes count
counts sort sorted order ordered unique duplicate duplicates missing null empty nested flat flatten
column columns row rows table tables frame frames series label labels axis dimension dimensions shape
shapes reshape copy copies view views reference references pointer memory thread threads process
processes async await task tasks job jobs worker workers queue queues pool pools lock locks event
events signal signals timer timers schedule scheduled deadline timeout retry retries request requests
response responses header headers body bodies status code codes path paths file files folder folders
stream streams buffer buffers chunk chunks encode decode parse parser parsed serialize deserialize
load loaded loads save saved store stored cache cached fetch fetched upload download install
installed uninstall upgrade downgrade version versions release releases build builds test tests
tested testing debug debugging log logs logging logger monitor monitoring metric metrics alert alerts
dashboard deploy deployed deployment deployments server servers client clients service services
endpoint endpoints network networks address addresses host hosts port ports proxy gateway route routes
router database databases record records query queries transaction commit rollback migrate migration
backup restore snapshot replica cluster node nodes container containers image images volume volumes
permission permissions user users group groups role roles account accounts token tokens secret
secrets credential credentials password passwords encrypt encrypted decrypt hash hashes checksum
checksums digest signature verified verification model models weights inference training prompt
prompts completion completions embedding embeddings context window temperature sampling batch batches
throughput latency benchmark benchmarks baseline quantized gpu gpus cpu cpus disk disks
"""
