"""Smart HTTP routes: ``/<slug>.git/info/refs``, ``git-upload-pack``, ``git-receive-pack``.

Shaped like Dulwich's HTTP server: the service decides read or write, only the two
smart services exist, Content-Types are checked exactly, and git itself does the
packing. Authentication is HTTP Basic with a personal access token as the password
(or a bearer token); session cookies are ignored here, so a web page can never make a
browser push on someone's behalf. Errors are short ``text/plain`` bodies, which git
prints to the user as ``remote: …`` lines.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, g, redirect, request, url_for

import gitstore
from app.accounts.models import User
from app.accounts.services import TOKEN_PREFIX, user_for_token
from app.analytics import track
from app.auth.permissions import Action, grant_for
from app.documents.models import Document
from app.documents.services import SLUG_RE, resolve_slug
from app.githttp import services
from app.githttp.services import BodyTooLarge, RequestBody, UnsupportedEncoding

log = logging.getLogger(__name__)

bp = Blueprint("githttp", __name__)

REALM = 'Basic realm="Quire"'
NO_CACHE = {
    "Cache-Control": "no-cache, max-age=0, must-revalidate",
    "Expires": "Fri, 01 Jan 1980 00:00:00 GMT",
    "Pragma": "no-cache",
}


class GitHttpError(Exception):
    """An error answered as plain text with ``status`` (and a Basic challenge on 401)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(GitHttpError)
def _git_error(exc: GitHttpError) -> Response:
    headers = dict(NO_CACHE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = REALM
    return Response(exc.message.rstrip("\n") + "\n", exc.status, headers, mimetype="text/plain")


def _tokens_url() -> str:
    base = current_app.config.get("BASE_URL") or request.host_url.rstrip("/")
    return f"{base}{url_for('accounts.tokens')}"


def _actor() -> User | None:
    """The user named by the Authorization header (None: anonymous)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        user = user_for_token(value.strip())
        if user is None:
            raise GitHttpError(401, "That token is invalid, expired or revoked.")
        return user
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise GitHttpError(401, "Malformed Basic credentials.") from None
    _, _, secret = decoded.partition(":")
    if not secret.startswith(TOKEN_PREFIX):
        raise GitHttpError(
            401,
            "Passwords are not accepted for Git over HTTP. Create a personal access token at "
            f"{_tokens_url()} and use it as the password (your username stays the same).",
        )
    user = user_for_token(secret)
    if user is None:
        raise GitHttpError(
            401, f"That token is invalid, expired or revoked. Create a new one at {_tokens_url()}"
        )
    return user


def _document(slug: str, action: Action) -> tuple[User | None, Document]:
    """Authenticate, find the repository, check ``action``; raise GitHttpError otherwise.

    Anonymous clients get 401 both for private and for missing repositories (so git
    asks for credentials and existence never leaks); signed-in users without read
    access get 404.
    """
    if not SLUG_RE.fullmatch(slug):
        raise GitHttpError(404, "Not a valid repository name: use https://HOST/<document-slug>.git")
    actor = _actor()
    document = resolve_slug(slug)
    grant = grant_for(actor, document) if document is not None else None
    if grant is None or not grant.allows(Action.READ):
        if actor is None:
            raise GitHttpError(
                401,
                "Repository not found, or it is private: authenticate with your username and "
                "a personal access token.",
            )
        raise GitHttpError(404, "Repository not found.")
    if not grant.allows(action):
        if actor is None:
            raise GitHttpError(401, "Pushing needs your username and a personal access token.")
        raise GitHttpError(
            403,
            f"You have {grant.role.label} access to {document.slug}: pushing needs the "
            "editor role or above. Ask a maintainer of the document.",
        )
    g.actor = actor
    return actor, document


def _service(name: str | None) -> gitstore.GitService:
    try:
        return gitstore.GitService(name)
    except ValueError:
        raise GitHttpError(
            403,
            "Quire speaks Git's smart HTTP protocol only (service=git-upload-pack or "
            "git-receive-pack); dumb HTTP is not supported.",
        ) from None


def _git_protocol() -> str | None:
    header = request.headers.get("Git-Protocol")
    value = gitstore.parse_git_protocol(header)
    if header and value is None:
        raise GitHttpError(400, "Invalid Git-Protocol header.")
    return value


def _body(service: gitstore.GitService, limit: int) -> RequestBody:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != service.request_type:
        raise GitHttpError(415, f"Expected Content-Type {service.request_type}.")
    environ = request.environ
    length = environ.get("CONTENT_LENGTH") or None
    try:
        return RequestBody(
            environ["wsgi.input"],
            length=int(length) if length is not None else None,
            encoding=environ.get("HTTP_CONTENT_ENCODING", ""),
            limit=limit,
        )
    except BodyTooLarge:
        raise _too_large(limit) from None
    except UnsupportedEncoding as exc:
        raise GitHttpError(415, f"Unsupported Content-Encoding {exc}.") from None
    except ValueError:
        raise GitHttpError(400, "Invalid Content-Length.") from None


def _too_large(limit: int) -> GitHttpError:
    return GitHttpError(413, f"The request is larger than this server accepts ({limit} bytes).")


def _git_kwargs() -> dict[str, str]:
    return {"git_binary": current_app.config["GIT_BINARY"]}


@bp.get("/<slug>.git/info/refs")
def info_refs(slug: str) -> Response:
    service = _service(request.args.get("service"))
    action = Action.PUSH if service is gitstore.GitService.RECEIVE_PACK else Action.READ
    _, document = _document(slug, action)
    config = services.UPLOAD_CONFIG if action is Action.READ else services.receive_config()
    try:
        body = gitstore.advertise_refs(
            services.repo_path(document),
            service,
            git_protocol=_git_protocol(),
            config=config,
            env=services.git_env(),
            **_git_kwargs(),
        )
    except OSError:
        current_app.logger.exception("git advertisement failed for %s", document.slug)
        raise GitHttpError(500, "The repository could not be read.") from None
    return Response(body, 200, NO_CACHE, content_type=service.advertisement_type)


@bp.post("/<slug>.git/git-upload-pack")
def upload_pack(slug: str) -> Response:
    service = gitstore.GitService.UPLOAD_PACK
    _, document = _document(slug, Action.READ)
    limit = current_app.config["GIT_MAX_FETCH_REQUEST_BYTES"]
    body = _body(service, limit)
    # A fetch request is only wants and haves: small, so it is read and checked whole.
    try:
        data = body.read_all()
        gitstore.validate_pkt_stream(data)
    except BodyTooLarge:
        raise _too_large(limit) from None
    except gitstore.ProtocolError as exc:
        raise GitHttpError(400, f"Malformed fetch request: {exc}") from None
    process = gitstore.ServiceProcess(
        services.repo_path(document),
        service,
        git_protocol=_git_protocol(),
        config=services.UPLOAD_CONFIG,
        env=services.git_env(),
        **_git_kwargs(),
    )
    process.feed_in_background(data)
    operation = services.GitOperation(services.fetch_operation(data), body)
    if services.fetch_operation(data) == "clone":
        track("git_clone", {"document_id": document.id})

    def stream() -> Iterator[bytes]:
        finished = False
        try:
            yield from map(operation.sent, process.stream_output())
            finished = True
        finally:
            if not finished:  # the client went away: no point finishing the pack
                process.kill()
            process.close()
            operation.done(finished and process.proc.returncode == 0)

    return Response(stream(), 200, NO_CACHE, content_type=service.result_type)


@bp.post("/<slug>.git/git-receive-pack")
def receive_pack(slug: str) -> Response:
    service = gitstore.GitService.RECEIVE_PACK
    actor, document = _document(slug, Action.PUSH)
    limit = current_app.config["GIT_MAX_BODY_BYTES"]
    body = _body(service, limit)
    try:
        push = gitstore.read_push_commands(body.read)
        if not push.updates:  # git's 4-byte "0000" probe before a big push: auth is done
            body.drain()
            return Response(b"", 200, NO_CACHE, content_type=service.result_type)
        reasons = services.refusals(actor, document, push)
        if any(reasons):
            body.drain()  # the client sends the pack regardless; read it before answering
            report = services.refused_report(push, reasons)
            services.GitOperation("push", body).done(False)
            return Response(report, 200, NO_CACHE, content_type=service.result_type)
    except BodyTooLarge:
        raise _too_large(limit) from None
    except gitstore.ProtocolError as exc:
        raise GitHttpError(400, f"Malformed push request: {exc}") from None

    with (
        services.GitOperation("push", body) as operation,
        gitstore.ServiceProcess(
            services.repo_path(document),
            service,
            config=services.receive_config(),
            env=services.hook_env(current_app, actor, document),
            **_git_kwargs(),
        ) as process,
    ):
        process.collect_output_in_background()
        try:
            process.write(push.raw)
            for chunk in body.chunks():
                process.write(chunk)
        except BrokenPipeError:
            # git stopped reading (a bad pack); its report, sent below, says why.
            log.info("git receive-pack stopped reading the pack early")
        except BodyTooLarge:
            process.close_input()  # git sees a truncated pack and drops its quarantine
            raise _too_large(limit) from None
        except gitstore.ProtocolError as exc:
            process.close_input()
            raise GitHttpError(400, f"Malformed push request: {exc}") from None
        except OSError:
            process.close_input()  # the client disconnected mid-push
            raise GitHttpError(400, "The push was interrupted.") from None
        process.close_input()
        if process.wait() != 0:
            current_app.logger.warning(
                "git receive-pack failed for %s: %s", document.slug, process.stderr_text()
            )
        output = operation.sent(process.collected_output())
        statuses = services.record_push(document, actor, push, output)
        track("git_push", {"document_id": document.id, "refs": sum(s.ok for s in statuses)})
        operation.ok = bool(statuses) and all(s.ok for s in statuses)
    return Response(output, 200, NO_CACHE, content_type=service.result_type)


@bp.get("/<slug>.git")
@bp.get("/<slug>.git/")
def repository_root(slug: str) -> Response:
    """A browser following a clone URL lands on the document page."""
    if not SLUG_RE.fullmatch(slug):
        raise GitHttpError(404, "Not a valid repository name.")
    return redirect(url_for("documents.show", slug=slug))


@bp.route("/<slug>.git/<path:rest>", methods=["GET", "POST", "HEAD"])
def other_git_path(slug: str, rest: str) -> Response:
    """Anything else under a ``.git`` URL: dumb HTTP paths or impossible repository names."""
    if not SLUG_RE.fullmatch(slug):
        raise GitHttpError(404, "Not a valid repository name: use https://HOST/<document-slug>.git")
    if rest in ("HEAD", "info/packs", "objects/info/packs", "objects/info/alternates") or (
        rest.startswith(("objects/", "refs/"))
    ):
        raise GitHttpError(
            403, "Dumb HTTP is not supported: use a Git client that speaks smart HTTP."
        )
    raise GitHttpError(404, "Not a Git smart-HTTP endpoint.")
