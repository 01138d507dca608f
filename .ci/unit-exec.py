#!/usr/bin/python3
"""Run a systemd service unit's commands by hand, the way systemd would.

    unit-exec.py UNIT_FILE [--instance NAME] --mountpoint DIR -- CHECK...

CI has no systemd as PID 1, so this stands in for `systemctl start` and
`systemctl stop` of a Type=simple unit that mounts a FUSE filesystem:

  - %i %I %f %n %N %p %C %% are expanded (the instance unescaped with
    systemd-escape, %C the system cache directory /var/cache); in Exec
    lines after the line is split into words, elsewhere before;
  - Environment= then EnvironmentFile= (later wins, "-" allows a missing
    file) make the environment, starting from systemd's PATH alone;
  - in Exec lines, "$VAR" as a word of its own becomes zero or more words
    split at white space, "${VAR}" is replaced in place (systemd.exec(5));
  - CacheDirectory= is created under /var/cache;
  - ExecStartPre= run in order, ExecStart= is started, and once DIR is a
    mount point CHECK runs; then SIGTERM (what `systemctl stop` sends),
    the main process must exit 0, and ExecStopPost= run.

Exit status 0 when all of it worked.  The expanded command lines are
printed; they hold paths, never a key.
"""
import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import time

SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def say(msg):
    print("unit-exec: " + msg, flush=True)


def parse_unit(path):
    """[(section, key, value)] in file order, continuation lines joined."""
    out, section, pending = [], None, ""
    with open(path) as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            if pending:
                line = pending + line
                pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1]
                continue
            key, _, value = s.partition("=")
            out.append((section, key.strip(), value.strip()))
    return out


def unescape(name, path):
    cmd = ["systemd-escape", "--unescape"] + (["--path"] if path else [])
    return subprocess.run(cmd + ["--", name], check=True, text=True,
                          capture_output=True).stdout.strip()


def specifiers(text, unit_name, instance):
    prefix = unit_name.split("@")[0] if "@" in unit_name else \
        unit_name.rsplit(".", 1)[0]
    table = {
        "i": instance or "",
        "I": unescape(instance, False) if instance else "",
        "f": unescape(instance, True) if instance else
        "/" + unescape(prefix, False),
        "n": unit_name,
        "N": unit_name.rsplit(".", 1)[0],
        "p": prefix,
        "C": "/var/cache",
        "%": "%",
    }

    def one(m):
        if m.group(1) not in table:
            raise SystemExit("unit-exec: unsupported specifier %" +
                             m.group(1))
        return table[m.group(1)]
    return re.sub(r"%(.)", one, text)


def read_env_file(path, env):
    with open(path) as fh:
        for line in fh:
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            key, eq, value = s.partition("=")
            if not eq:
                continue
            words = shlex.split(value.strip()) if value.strip() else [""]
            env[key.strip()] = " ".join(words)


def expand_exec(line, env, spec):
    """Exec line -> (ignore_failure, argv).  As systemd does it: split into
    words (quotes, C escapes), then specifiers in each word, then $VARs."""
    ignore = False
    while line and line[0] in "-@:+!":
        ignore = ignore or line[0] == "-"
        line = line[1:]
    argv = []
    for word in (spec(w) for w in shlex.split(line)):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv.extend(env.get(m.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                           lambda m: env.get(m.group(1), ""), word))
    return ignore, argv


def run_step(what, ignore, argv, env):
    say("%s: %s" % (what, shlex.join(argv)))
    rc = subprocess.run(argv, env=env).returncode
    if rc != 0 and not ignore:
        raise SystemExit("unit-exec: %s failed with status %d" % (what, rc))


def is_mount(path):
    return subprocess.run(["mountpoint", "-q", path]).returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("unit")
    ap.add_argument("--instance")
    ap.add_argument("--mountpoint", required=True)
    ap.add_argument("check", nargs="+")
    a = ap.parse_args()

    base = os.path.basename(a.unit)
    unit_name = base.replace("@.", "@%s." % a.instance) if a.instance \
        else base
    env = {"PATH": SYSTEMD_PATH}

    def spec(text):
        return specifiers(text, unit_name, a.instance)
    service = [(k, v if k.startswith("Exec") else spec(v))
               for s, k, v in parse_unit(a.unit) if s == "Service"]
    if dict(service).get("Type", "simple") != "simple":
        raise SystemExit("unit-exec: only Type=simple units")
    for k, v in service:
        if k == "Environment":
            for assignment in shlex.split(v):
                key, _, value = assignment.partition("=")
                env[key] = value
    for k, v in service:
        if k == "EnvironmentFile":
            optional = v.startswith("-")
            path = v.lstrip("-")
            if os.path.exists(path) or not optional:
                say("EnvironmentFile: " + path)
                read_env_file(path, env)
        elif k == "CacheDirectory":
            for d in v.split():
                os.makedirs(os.path.join("/var/cache", d), exist_ok=True)

    for k, v in service:
        if k == "ExecStartPre":
            run_step(k, *expand_exec(v, env, spec), env)
    starts = [v for k, v in service if k == "ExecStart"]
    if len(starts) != 1:
        raise SystemExit("unit-exec: want one ExecStart=")
    _, argv = expand_exec(starts[0], env, spec)
    say("ExecStart: " + shlex.join(argv))
    main_proc = subprocess.Popen(argv, env=env)
    ok = False
    try:
        deadline = time.monotonic() + 20
        while not is_mount(a.mountpoint):
            if main_proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("unit-exec: %s not mounted (status %s)" %
                                 (a.mountpoint, main_proc.poll()))
            time.sleep(0.1)
        say("mounted " + a.mountpoint)
        if subprocess.run(a.check).returncode != 0:
            raise SystemExit("unit-exec: the check failed")
        say("stop: SIGTERM to the main process")
        main_proc.send_signal(signal.SIGTERM)
        rc = main_proc.wait(30)
        if rc != 0:
            raise SystemExit("unit-exec: main process exited %d" % rc)
        if is_mount(a.mountpoint):
            raise SystemExit("unit-exec: still mounted after stop")
        ok = True
    finally:
        if main_proc.poll() is None:
            main_proc.kill()
            main_proc.wait()
        for k, v in service:
            if k == "ExecStopPost":
                run_step(k, *expand_exec(v, env, spec), env)
    say("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
