#!/usr/bin/env python3
"""Helpers of the file copy benchmark (bench/cp.sh).

  helper.py tree DIR FILES PERDIR SIZE
      Writes FILES files of SIZE random bytes into DIR, PERDIR per
      subdirectory (d000/f000 ...), each file different.

  helper.py digest DIR
      Prints "files bytes sha256": the number of regular files under DIR,
      their total size, and a hash over their sorted relative paths and
      contents (a misplaced, short or altered file changes it).

  helper.py run OUT ERR -- CMD...
      Runs CMD (stdin /dev/null, stdout to OUT, stderr to ERR); prints
      "wall_seconds cpu_seconds exit_code", where cpu is the user + system
      time of CMD and every descendant it waited for (scp's and sftp's ssh
      included), from getrusage(RUSAGE_CHILDREN).

  helper.py ticks PID
      Prints the CPU seconds of PID plus those of its reaped descendants
      (/proc/PID/stat utime + stime + cutime + cstime).

  helper.py median X...
      Prints the median.
"""
import hashlib
import os
import resource
import subprocess
import sys
import time


def tree(root, files, perdir, size):
    files, perdir, size = int(files), int(perdir), int(size)
    os.makedirs(root)
    for i in range(files):
        d = os.path.join(root, "d%03d" % (i // perdir))
        if i % perdir == 0:
            os.mkdir(d)
        with open(os.path.join(d, "f%03d" % (i % perdir)), "wb") as f:
            f.write(os.urandom(size))


def digest(root):
    paths = []
    for base, dirs, names in os.walk(root):
        dirs.sort()
        for n in names:
            p = os.path.join(base, n)
            if os.path.isfile(p) and not os.path.islink(p):
                paths.append(os.path.relpath(p, root))
    paths.sort()
    h = hashlib.sha256()
    total = 0
    for rel in paths:
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read()
        total += len(data)
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    print(len(paths), total, h.hexdigest())


def run(out, err, cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "wb") as o, open(err, "wb") as e:
        start = time.monotonic()
        rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e).returncode
        wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print("%.4f %.4f %d" % (wall, cpu, rc))


def ticks(pid):
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (stat field 3): utime..cstime are 14..17
    t = sum(int(x) for x in fields[11:15])
    print("%.2f" % (t / os.sysconf("SC_CLK_TCK")))


def median(xs):
    v = sorted(float(x) for x in xs)
    n = len(v)
    print(v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)


def main():
    a = sys.argv[1:]
    if a[:1] == ["tree"] and len(a) == 5:
        tree(*a[1:])
    elif a[:1] == ["digest"] and len(a) == 2:
        digest(a[1])
    elif a[:1] == ["run"] and len(a) > 4 and a[3] == "--":
        run(a[1], a[2], a[4:])
    elif a[:1] == ["ticks"] and len(a) == 2:
        ticks(a[1])
    elif a[:1] == ["median"] and len(a) > 1:
        median(a[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
