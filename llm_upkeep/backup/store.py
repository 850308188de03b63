"""The S3 side: one explicitly configured client, key layout, checksum capture, error classes.

Layout under the prefix:
  objects/sha256/<hex>        file contents, written once, never modified
  snapshots/<id>.json         one manifest per snapshot, written last
  locks/backup-<id>.json      lease of a running backup (prune sweeps nothing while one lives)
  locks/prune-<id>.json       marker of a running prune (a starting backup waits for it)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.auth
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.models import ObjectRecord, ObjRec
from llm_upkeep.configbase import resolve_secret
from llm_upkeep.redact import redact

log = logging.getLogger("llm_upkeep.backup")

OBJECTS = "objects/sha256/"
SNAPSHOTS = "snapshots/"
LOCKS = "locks/"

_ACCESS = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "403"}
_CHECKSUM = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "InvalidChecksum"}
_TRANSIENT = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "500", "502", "503", "504"}


MAX_DOC_BYTES = 512 * 1024 * 1024
"""Largest manifest read (about 2 million files); a bigger object under snapshots/ is not ours."""


def classify(exc: BaseException, action: str) -> BackupError:
    """Turn a botocore/s3transfer exception into a BackupError with a redacted message."""
    if isinstance(exc, BackupError):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return BackupError("no_credentials", f"{action}: no S3 credentials found ({exc})")
    if isinstance(
        exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError | ReadTimeoutError
    ):
        return BackupError("unreachable", f"{action}: S3 endpoint unreachable: {exc}", retryable=True)
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        msg = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if code in ("NoSuchBucket",):
            name = exc.response.get("Error", {}).get("BucketName")
            which = f"bucket {name!r}" if name else "bucket"
            return BackupError("no_such_bucket", f"{action}: {which} does not exist ({msg})")
        if code in _ACCESS:
            return BackupError("access_denied", f"{action}: access denied ({code}: {msg})")
        if code in _CHECKSUM:
            return BackupError("checksum_mismatch", f"{action}: S3 rejected the checksum ({code}: {msg})")
        return BackupError("s3_error", f"{action}: {code}: {msg}", retryable=code in _TRANSIENT)
    if isinstance(exc, BotoCoreError):
        return BackupError("s3_error", f"{action}: {exc}", retryable=True)
    if isinstance(exc, OSError):
        return BackupError("io_error", f"{action}: {exc}")
    return BackupError("error", f"{action}: {exc.__class__.__name__}: {exc}")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _not_found(exc: ClientError) -> bool:
    return _code(exc) in ("404", "NoSuchKey", "NotFound")


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and _not_found(exc)


def split_checksum(value: str) -> tuple[str, int | None]:
    """'abc=-3' -> ('abc=', 3). HeadObject and GetObject disagree on the suffix; compare without it."""
    base, sep, n = value.rpartition("-")
    if sep and n.isdigit() and base:
        return base, int(n)
    return value, None


def reported_checksum(resp: dict[str, Any], algorithm: str) -> tuple[str | None, int | None, str | None]:
    """(value, parts, other algorithm seen) from a Head/Get/Put response."""
    value = resp.get(f"Checksum{algorithm}")
    if value:
        v, n = split_checksum(value)
        return v, n, None
    others = [
        k[len("Checksum") :] for k in resp if k.startswith("Checksum") and k != "ChecksumType" and resp[k]
    ]
    return None, None, (others[0] if others else None)


def compare_record(
    expected: ObjectRecord | ObjRec, resp: dict[str, Any], size: int | None = None
) -> str | None:
    """None when the response matches the record; else a problem name."""
    if size is not None and size != expected.size:
        return "size_mismatch"
    value, parts, other = reported_checksum(resp, expected.algorithm)
    if value is None:
        return "no_checksum" if other is None else "checksum_mismatch"
    if value != expected.checksum:
        return "checksum_mismatch"
    if parts is not None and expected.parts is not None and parts != expected.parts:
        return "checksum_mismatch"
    return None


PY_SIGV4 = "llm-upkeep-s3v4"
"""Our name for botocore's pure-Python S3 SigV4 signer (see _python_signer)."""
botocore.auth.AUTH_TYPE_MAPS.setdefault(PY_SIGV4, botocore.auth.S3SigV4Auth)
botocore.auth.AUTH_TYPE_MAPS.setdefault(PY_SIGV4 + "-query", botocore.auth.S3SigV4QueryAuth)  # presigned URLs
botocore.auth.AUTH_TYPE_MAPS.setdefault(PY_SIGV4 + "-presign-post", botocore.auth.S3SigV4PostAuth)


def _python_signer(signature_version: Any = None, **_: Any) -> str | None:
    """Sign S3 requests with botocore's Python SigV4 signer, not the awscrt one.

    With awscrt installed botocore signs through the CRT, which reads a file body through a C
    callback. When the endpoint dropped mid-upload, s3transfer interrupts every part still in
    flight by raising from that read; inside the CRT callback the exception was printed to
    stderr as a full traceback per part (plus "Treating Python exception as error 3") before
    our one error line. The Python signer hashes the same body with hashlib, so the
    interruption is an ordinary exception of that part, reported once through classify().
    """
    if signature_version in ("s3v4", "v4"):
        return PY_SIGV4
    return None


class _KeepOpenUploads:
    """The client as the transfer manager sees it, except that a failed multipart upload is not
    aborted: s3transfer aborts it on any failure (a cut, too_slow, Ctrl-C), which throws away
    the parts that arrived. Left open, the next run resumes it (resume.py); an upload no run
    resumes is aborted by the next run that sends the object, or by prune."""

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        log.info("keeping the open upload of %s for the next run to resume", kwargs.get("Key"))
        return {}


class S3Store:
    def __init__(self, cfg: BackupConfig):
        if not cfg.bucket:
            raise BackupError("not_configured", "backup is not configured: set [backup] bucket")
        self.cfg = cfg
        self.bucket = cfg.bucket
        self.prefix = cfg.prefix.strip("/")
        kwargs: dict[str, Any] = {}
        if cfg.access_key_id_env:
            kwargs["aws_access_key_id"] = resolve_secret(
                cfg.access_key_id_env, key="backup.access_key_id_env"
            )
            kwargs["aws_secret_access_key"] = resolve_secret(
                cfg.secret_access_key_env, key="backup.secret_access_key_env"
            )
            if cfg.session_token_env:
                kwargs["aws_session_token"] = resolve_secret(
                    cfg.session_token_env, key="backup.session_token_env"
                )
        session = boto3.session.Session(region_name=cfg.region, **kwargs)
        # Explicit checksum policy: boto3 >= 1.36 adds CRC32 checksums to every request by
        # default, which several S3-compatible stores reject. We send the algorithm we chose
        # ourselves on uploads and ask for checksums back only when we set ChecksumMode.
        self.boto_config = BotoConfig(
            connect_timeout=cfg.connect_timeout_s,
            read_timeout=cfg.read_timeout_s,
            # total_max_attempts counts every request; botocore's own max_attempts counts retries
            # only, so max_attempts = 5 sent 6 requests.
            retries={"total_max_attempts": cfg.max_attempts, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=max(10, cfg.max_concurrency + 4),
            s3={"addressing_style": cfg.addressing_style},
            user_agent_extra="llm-upkeep-backup",
        )
        self.client = session.client("s3", endpoint_url=cfg.endpoint_url, config=self.boto_config)
        self._captured: dict[str, dict[str, str]] = {}
        self._cap_lock = threading.Lock()
        self.deadline: float | None = None  # time.monotonic() past which no request is sent
        self.client.meta.events.register_first("choose-signer.s3", _python_signer)
        self.client.meta.events.register("before-send.s3", self._check_deadline)
        for op in ("PutObject", "CompleteMultipartUpload"):
            self.client.meta.events.register(f"before-parameter-build.s3.{op}", self._remember_key)
            self.client.meta.events.register(f"after-call.s3.{op}", self._capture)

    # -- the run's deadline (min_throughput_kib_s), checked before every request of every thread
    def set_budget(self, seconds: float | None) -> None:
        """Allow S3 work for ``seconds`` from now (None or a zero rate: no deadline)."""
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def _check_deadline(self, request: Any = None, **_: Any) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BackupError(
                "too_slow",
                f"S3 at {self.describe()} is slower than min_throughput_kib_s="
                f"{self.cfg.min_throughput_kib_s:g} allows (after slow_grace_s={self.cfg.slow_grace_s:g}); "
                "stopped, nothing was committed; run it again when the store is healthy",
                retryable=True,
            )

    # -- checksum capture: the transfer manager hides responses; S3 returns the checksum in them.
    @staticmethod
    def _remember_key(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["llm_upkeep_key"] = params.get("Key")

    def _capture(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        key = context.get("llm_upkeep_key")
        if key and isinstance(parsed, dict) and "Error" not in parsed:
            found = {k: v for k, v in parsed.items() if k.startswith("Checksum") and isinstance(v, str)}
            with self._cap_lock:
                self._captured[key] = found

    def pop_captured(self, key: str) -> dict[str, str] | None:
        with self._cap_lock:
            return self._captured.pop(key, None)

    # -- keys
    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    @staticmethod
    def object_rel(sha: str) -> str:
        return f"{OBJECTS}{sha}"

    @staticmethod
    def snapshot_rel(snapshot_id: str) -> str:
        return f"{SNAPSHOTS}{snapshot_id}.json"

    def transfer_config(self) -> TransferConfig:
        return TransferConfig(
            multipart_threshold=self.cfg.multipart_threshold,
            multipart_chunksize=self.cfg.multipart_chunksize,
            max_concurrency=self.cfg.max_concurrency,
            use_threads=True,
            preferred_transfer_client="classic",
        )

    def transfer_manager(self):
        return create_transfer_manager(_KeepOpenUploads(self.client), self.transfer_config())

    # -- plain operations, every failure classified
    def check_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise BackupError("no_such_bucket", f"bucket {self.bucket!r} does not exist") from None
            raise classify(exc, f"checking bucket {self.bucket!r}") from None
        except Exception as exc:
            raise classify(exc, f"checking bucket {self.bucket!r}") from None

    def list(self, rel_prefix: str) -> Iterator[dict[str, Any]]:
        """Objects under a prefix: dicts with rel, size, last_modified."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(rel_prefix)
            )
            for page in pages:
                for o in page.get("Contents", []):
                    yield {"rel": self.rel(o["Key"]), "size": o["Size"], "last_modified": o["LastModified"]}
        except Exception as exc:
            raise classify(exc, f"listing {rel_prefix}") from None

    def head(self, rel: str) -> dict[str, Any] | None:
        """HeadObject with ChecksumMode; None when the object does not exist."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(rel), ChecksumMode="ENABLED")
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise classify(exc, f"checking {rel}") from None
        except Exception as exc:
            raise classify(exc, f"checking {rel}") from None

    def put_json(
        self, rel: str, doc: Any, metadata: dict[str, str] | None = None, *, create_only: bool = False
    ) -> None:
        """Small documents (manifests, leases): single PUT that S3 verifies against our SHA256.

        ``create_only`` sends ``If-None-Match: *``: S3 writes the object only when the key does
        not exist, atomically, and answers 412 otherwise (BackupError 'exists')."""
        body = json.dumps(doc, separators=(",", ":")).encode() if not isinstance(doc, bytes) else doc
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        extra = {"IfNoneMatch": "*"} if create_only else {}
        try:
            resp = self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(rel),
                Body=body,
                ContentType="application/json",
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=digest,
                Metadata=metadata or {},
                **extra,
            )
        except ClientError as exc:
            if create_only and _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise BackupError("exists", f"{rel} already exists") from None
            raise classify(exc, f"writing {rel}") from None
        except Exception as exc:
            raise classify(exc, f"writing {rel}") from None
        got = resp.get("ChecksumSHA256")
        if got is not None and split_checksum(got)[0] != digest:
            raise BackupError(
                "checksum_mismatch", f"writing {rel}: S3 reported checksum {got}, expected {digest}"
            )

    def get_bytes(self, rel: str, max_bytes: int | None = None) -> bytes:
        """A small document (manifest, lease) whole; one larger than ``max_bytes`` is refused from
        its Content-Length, or after reading one byte past the cap, never read whole."""
        max_bytes = MAX_DOC_BYTES if max_bytes is None else max_bytes
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.key(rel), ChecksumMode="ENABLED")
            stream = resp["Body"]
            try:
                size = int(resp.get("ContentLength") or 0)
                body = b"" if size > max_bytes else stream.read(max_bytes + 1)
            finally:
                stream.close()
            if size > max_bytes or len(body) > max_bytes:
                raise BackupError(
                    "too_large",
                    f"{rel} is {max(size, len(body))} bytes, over the {max_bytes}-byte limit; not read",
                )
        except ClientError as exc:
            if _not_found(exc):
                raise BackupError(
                    "not_found", f"{rel} does not exist in s3://{self.bucket}/{self.prefix}"
                ) from None
            raise classify(exc, f"reading {rel}") from None
        except Exception as exc:
            raise classify(exc, f"reading {rel}") from None
        got = resp.get("ChecksumSHA256")
        if got and "-" not in got and got != base64.b64encode(hashlib.sha256(body).digest()).decode():
            raise BackupError("checksum_mismatch", f"{rel}: content does not match its stored SHA256")
        return body

    def delete(self, rels: list[str]) -> list[str]:
        """Delete in batches of 1000; returns keys S3 refused to delete."""
        failed: list[str] = []
        for i in range(0, len(rels), 1000):
            batch = rels[i : i + 1000]
            try:
                resp = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.key(r)} for r in batch], "Quiet": True},
                )
            except Exception as exc:
                raise classify(exc, "deleting objects") from None
            failed.extend(self.rel(e["Key"]) for e in resp.get("Errors", []))
        return failed

    def delete_one(self, rel: str, if_match: str | None = None) -> None:
        """Delete one object; with ``if_match`` (an ETag) only that version of it (412: 'changed')."""
        extra = {"IfMatch": if_match} if if_match else {}
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(rel), **extra)
        except ClientError as exc:
            if if_match and _code(exc) in ("PreconditionFailed", "412"):
                raise BackupError("changed", f"{rel} changed since it was read") from None
            raise classify(exc, f"deleting {rel}") from None
        except Exception as exc:
            raise classify(exc, f"deleting {rel}") from None

    def list_uploads(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.key(OBJECTS)
            ):
                out.extend(page.get("Uploads", []))
        except Exception as exc:
            raise classify(exc, "listing multipart uploads") from None
        return out

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _code(exc) != "NoSuchUpload":
                raise classify(exc, "aborting a multipart upload") from None
        except Exception as exc:
            raise classify(exc, "aborting a multipart upload") from None

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return redact(f"{where} at {self.cfg.endpoint_url}" if self.cfg.endpoint_url else where)
