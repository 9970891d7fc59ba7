"""A real, throwaway Postgres server for the arena tests (initdb, pg_ctl start, stop, remove), and
match stores on it."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from maro.arena.store.matches import MatchStore
from tests.helpers import free_port

PG_USER = "maro"
PG_DATABASE = "arena"
_FALLBACK_OS_USER = "maro-pg"


def postgres_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then the newest /usr/lib/postgresql/*/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        # Debian puts symlinks on PATH; initdb finds `postgres` beside its real location.
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _version(Path(p).parent.name))
    for folder in reversed(candidates):
        if all(os.access(Path(folder, tool), os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _server_os_user() -> str | None:
    """None when not root; otherwise an unprivileged user, since postgres refuses to run as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _FALLBACK_OS_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _FALLBACK_OS_USER],
                   check=True, capture_output=True)
    return _FALLBACK_OS_USER



def _run(os_user: str | None, *args: str) -> None:
    command = [*args] if os_user is None else ["runuser", "-u", os_user, "--", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def postgres_url():
    """SQLAlchemy URL of an empty database on a fresh Postgres server, alive for the whole session."""
    bindir = postgres_bindir()
    if bindir is None:
        message = ("Postgres server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; "
                   "run `make postgres-server` or `apt-get install postgresql`")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

    os_user = _server_os_user()
    # Not under pytest's tmp_path: that folder is private to root and the server user must reach it.
    root = Path(tempfile.mkdtemp(prefix="maro-pg-"))
    data, log = root / "data", root / "server.log"
    if os_user is not None:
        entry = pwd.getpwnam(os_user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    try:
        _run(os_user, str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync")
        _run(os_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        text = log.read_text() if log.exists() else "(none)"
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start Postgres: {exc}\nserver log:\n{text}") from None
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user=PG_USER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {PG_DATABASE}")
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/{PG_DATABASE}"
    finally:
        try:
            _run(os_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def open_store(postgres_url):
    """Opens MatchStores (arena replicas) on the session's database; closes them and empties it after."""
    opened: list[MatchStore] = []

    def _open() -> MatchStore:
        opened.append(MatchStore(postgres_url))
        return opened[-1]

    yield _open
    for store in opened:
        store.close()
    engine = create_engine(postgres_url)
    with engine.begin() as db:  # every table, including ones other components add beside the store's
        db.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
