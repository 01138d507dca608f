"""
Incremental backups that cost nothing (issue 11): restic and borg from
Debian back up a mount twice, with a remount at the same path and the
same cache_dir in between.  The second run must find every file
unchanged (so inode numbers, sizes, mtimes and ctimes did not move), the
stand-in must see no API call and no data request during it, and a
restore must be byte-equal to the sources - also when the manifest gains
ids between the runs, and for discovered images.

borg keeps in its files cache only the files older than the newest
ctime of a run (cmtime granularity; borg/cache.py), so it always reads
the newest file(s) again: the borg runs use -o disk_cache, which serves
those re-reads with no request, and the tests expect exactly those files
not to be reported unchanged.
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import sha256

import standin

# CPFS_BACKUP_FILES=1000 measures the figures quoted in the README.
NFILES = int(os.environ.get("CPFS_BACKUP_FILES", "40"))

pytestmark = pytest.mark.skipif(
    not (shutil.which("restic") and shutil.which("borg")),
    reason="restic and borgbackup are not installed (tests/run.sh "
    "installs them)")


def make_files(servers, n, seed=0):
    """n objects, each with its own Last-Modified (as on S3)."""
    ids = []
    for i in range(n):
        size = (i * 7919 + seed * 131) % 70000 + (i % 3) * 300000
        ids.append(servers.add(standin.make_bytes(size, seed=seed * 1000 + i),
                               filename="f%03d.bin" % i,
                               last_modified=1600000000 + seed * 7 +
                               i * 3600))
    return ids


def newest(mnt, names):
    """The names among @names with the newest ctime (borg reads them)."""
    ct = {n: os.stat(os.path.join(mnt, n)).st_ctime_ns for n in names}
    top = max(ct.values())
    return {n for n, t in ct.items() if t == top}


def tool_options(tool, tmp_path):
    if tool == "borg":
        return ["disk_cache=%s" % (tmp_path / "dc"), "disk_cache_size=64M"]
    return []


def run(argv, env, cwd=None):
    r = subprocess.run(argv, env=env, cwd=cwd, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "%s failed (%d):\n%s\n%s" % (
        argv[:3], r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout + r.stderr  # borg lists on stderr


def restic_env(tmp_path):
    env = dict(os.environ)
    env.update(RESTIC_PASSWORD="test-pass",
               RESTIC_REPOSITORY=str(tmp_path / "restic-repo"),
               RESTIC_CACHE_DIR=str(tmp_path / "restic-cache"),
               HOME=str(tmp_path))
    return env


def restic_summary(out):
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("message_type") == "summary":
            return msg
    raise AssertionError("no restic summary in:\n" + out[-2000:])


def borg_env(tmp_path):
    env = dict(os.environ)
    env.update(BORG_REPO=str(tmp_path / "borg-repo"),
               BORG_BASE_DIR=str(tmp_path / "borg-base"),
               BORG_PASSPHRASE="",
               BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
               BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")
    return env


def borg_changes(out):
    """Status letters of `borg create --list`: {path: letter}."""
    seen = {}
    for line in out.splitlines():
        if len(line) > 2 and line[1] == " ":
            seen[line[2:]] = line[0]
    return seen


def backup_twice(servers, cpfs, tmp_path, tool, first_ids, second_ids,
                 options=(), manifest=True):
    """Mounts, backs up with @tool, remounts, backs up again; returns
    (first-run report, second-run report, calls during the second run)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cache = tmp_path / "cache"
    cache.mkdir()
    if tool == "restic":
        env = restic_env(tmp_path)
        run(["restic", "init"], env)
        cmd = ["restic", "backup", "--json", str(mnt)]
    else:
        env = borg_env(tmp_path)
        run(["borg", "init", "--encryption=none"], env)
        cmd = None
    reports = []
    # counts are the point here, not the pace: no client-side ceiling
    options = ["api_rate=100000"] + list(options) + \
        tool_options(tool, tmp_path)
    for n, ids in enumerate((first_ids, second_ids)):
        m = cpfs(*options, manifest=list(ids) if manifest else None,
                 discover=not manifest, cache_dir=cache, mountpoint=mnt)
        if not manifest and n == 0:
            # the remount lists the persisted walk: no walk to wait for
            from test_discover import wait_walks
            wait_walks(m)
        servers.clear_logs()
        if tool == "restic":
            reports.append(restic_summary(run(cmd, env)))
        else:
            out = run(["borg", "create", "--list", "--filter=AMEU",
                       "::run%d" % n, "."], env, cwd=str(mnt))
            reports.append(borg_changes(out))
            reports[-1]["newest"] = newest(str(mnt), [
                x for x in os.listdir(mnt) if len(x) == 24])
        calls = (servers.all_api_calls(), servers.data_gets(),
                 servers.image_gets())
        print("%s run %d: %d API calls, %d data requests, %d image "
              "requests" % ((tool, n + 1) + calls))
        assert m.unmount() == 0
    return reports[0], reports[1], calls


def restore_and_compare(tool, tmp_path, servers, ids, content=None):
    content = content or servers.content
    dst = tmp_path / ("restore-" + tool)
    dst.mkdir()
    if tool == "restic":
        run(["restic", "restore", "latest", "--target", str(dst)],
            restic_env(tmp_path))
        root = dst / str(tmp_path / "mnt").lstrip("/")
    else:
        run(["borg", "extract", "::run1"], borg_env(tmp_path), cwd=str(dst))
        root = dst
    for oid in ids:
        with open(root / oid, "rb") as fh:
            assert sha256(fh.read()) == sha256(content[oid]), oid


@pytest.mark.parametrize("tool", ["restic", "borg"])
def test_second_backup_is_free(servers, cpfs, tmp_path, tool):
    ids = make_files(servers, NFILES)
    first, second, calls = backup_twice(servers, cpfs, tmp_path, tool,
                                        ids, ids)
    if tool == "restic":
        assert first["files_new"] == NFILES
        assert second["files_unmodified"] == NFILES, second
        assert second["files_new"] == 0 and second["files_changed"] == 0
    else:
        fresh = second.pop("newest")
        assert sum(v == "A" for v in first.values()) == NFILES, first
        assert len(second) == NFILES
        assert {k for k, v in second.items() if v != "U"} == fresh, second
    assert calls == (0, 0, 0), "second run: API, data, image requests"
    restore_and_compare(tool, tmp_path, servers, ids)


@pytest.mark.parametrize("tool", ["restic", "borg"])
def test_manifest_gains_ids(servers, cpfs, tmp_path, tool):
    ids = make_files(servers, NFILES)
    more = make_files(servers, 5, seed=9)
    # new ids in the middle of the manifest, not only at its end
    second_ids = ids[:20] + more + ids[20:]
    first, second, calls = backup_twice(servers, cpfs, tmp_path, tool,
                                        ids, second_ids)
    if tool == "restic":
        assert second["files_unmodified"] == NFILES, second
        assert second["files_new"] == 5 and second["files_changed"] == 0
    else:
        fresh = second.pop("newest")
        assert {k for k, v in second.items() if v != "U"} == \
            set(more) | fresh, second
    # only the new files cost anything: one API call each
    assert calls[0] == 5, calls
    restore_and_compare(tool, tmp_path, servers, second_ids)


@pytest.mark.parametrize("tool", ["restic", "borg"])
def test_discovered_images_second_backup_is_free(servers, cpfs, tmp_path,
                                                 tool):
    ex = standin.make_store(servers.data, servers.images, servers.store,
                            pages=20, events=2, products=5)
    first, second, calls = backup_twice(servers, cpfs, tmp_path, tool,
                                        None, None, manifest=False)
    n = len(ex.files)
    if tool == "restic":
        assert first["files_new"] == n
        assert second["files_unmodified"] == n, second
    else:
        fresh = second.pop("newest")
        assert len(second) == n
        assert {k for k, v in second.items() if v != "U"} == fresh, second
    assert calls == (0, 0, 0), calls
    restore_and_compare(tool, tmp_path, servers, list(ex.files), ex.files)
