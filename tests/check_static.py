#!/usr/bin/env python3
"""tests/check_static.py BUILD_DIR - cppcheck and clang-tidy over src/, zero
findings (meson test `static-analysis`, suite `lint`; make lint).

Both tools read the compile commands meson wrote (BUILD_DIR/
compile_commands.json), narrowed to the files in src/, so they see the same
defines and include paths as the compiler. clang-tidy's checks are in
.clang-tidy (with the reason for each one that is off); cppcheck's options
are below. A finding passes only when it is suppressed:
 - in the code, on or above its line: `// NOLINTNEXTLINE(check)` or
   `// cppcheck-suppress id`, with the reason in a comment beside it;
 - or by an entry in tests/static-suppressions.txt (for files other people
   are changing at the time), which names the tool, the check, the file and
   a piece of the flagged line, with the reason. An entry that no longer
   matches any finding fails the run too, so the list only shrinks.
Exit 0 when clean, 1 on findings (each printed as file:line: [check]
message), 2 when a tool is missing or fails.
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, 'src')
SUPPRESSIONS = os.path.join(ROOT, 'tests', 'static-suppressions.txt')

# cppcheck: everything but its style opinions and its guesses about code it
# cannot see. Off, and why:
#  variableScope: where a declaration sits is style (STYLE.md prefers
#    declarations at first use or at the top of a block, both are fine);
#  missingIncludeSystem: cppcheck does not need the C library's headers;
#  unusedFunction: needs the whole program and misfires on callbacks;
#  checkersReport / unmatchedSuppression: bookkeeping, not findings.
CPPCHECK_ARGS = [
    '--enable=warning,style,performance,portability',
    '--std=c11', '--inline-suppr', '--quiet', '--error-exitcode=0',
    '--suppress=variableScope', '--suppress=missingIncludeSystem',
    '--suppress=unusedFunction', '--suppress=unmatchedSuppression',
    '--template={file}:{line}: [{id}] {severity}: {message}',
]

FINDING = re.compile(r'^(?P<file>[^:\s]+):(?P<line>\d+):(?:\d+:)? (?:warning|error): (?P<msg>.*?) '
                     r'\[(?P<check>[a-zA-Z0-9_.,-]+)\]$')
CPPCHECK_FINDING = re.compile(r'^(?P<file>[^:\s]+):(?P<line>\d+): \[(?P<check>[A-Za-z0-9_]+)\] '
                              r'(?P<sev>\w+): (?P<msg>.*)$')


def fail(msg, code=2):
    print('check_static: ' + msg)
    sys.exit(code)


def src_commands(build, out_dir):
    """compile_commands.json with only src/*.c, each once."""
    path = os.path.join(build, 'compile_commands.json')
    if not os.path.exists(path):
        fail('%s missing (meson writes it at setup)' % path)
    with open(path, encoding='utf-8') as f:
        db = json.load(f)
    seen, keep = set(), []
    for e in db:
        file = os.path.realpath(os.path.join(e['directory'], e['file']))
        if os.path.dirname(file) == SRC and file.endswith('.c') and file not in seen:
            seen.add(file)
            keep.append(dict(e, file=file))
    if not keep:
        fail('no src/*.c in %s' % path)
    with open(os.path.join(out_dir, 'compile_commands.json'), 'w', encoding='utf-8') as f:
        json.dump(keep, f)
    return sorted(keep, key=lambda e: e['file'])


def source_line(file, line):
    try:
        with open(file, encoding='utf-8', errors='replace') as f:
            for i, text in enumerate(f, 1):
                if i == line:
                    return text.strip()
    except OSError:
        pass
    return ''


def run_cppcheck(db_dir, jobs):
    r = subprocess.run(['cppcheck', '--project=' + os.path.join(db_dir, 'compile_commands.json'),
                        '-j', str(jobs)] + CPPCHECK_ARGS, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        fail('cppcheck failed (exit %d): %s' % (r.returncode, r.stderr.strip()[-2000:]))
    found = []
    for line in r.stderr.splitlines():
        m = CPPCHECK_FINDING.match(line.strip())
        if m:
            found.append(('cppcheck', m['check'], os.path.realpath(m['file']), int(m['line']), m['msg']))
        elif re.match(r'^\S+:\d+: ', line):
            fail('cannot read a cppcheck line: ' + line)
    return found


def tidy_one(db_dir, entry):
    file = entry['file']
    r = subprocess.run(['clang-tidy', '-p', db_dir, '--quiet', '--use-color=false', file],
                       capture_output=True, text=True, check=False)
    found = []
    for line in r.stdout.splitlines():
        m = FINDING.match(line)
        if m:
            # Paths come relative to the compile command's directory.
            path = os.path.realpath(os.path.join(entry['directory'], m['file']))
            found.append(('clang-tidy', m['check'], path, int(m['line']), m['msg']))
        elif re.match(r'^\S+:\d+:\d+: (warning|error):', line):
            fail('cannot read a clang-tidy line: ' + line)
    if r.returncode != 0 and not found:
        fail('clang-tidy failed on %s: %s' % (file, (r.stderr or r.stdout).strip()[-2000:]))
    return found


def read_suppressions():
    entries = []
    with open(SUPPRESSIONS, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith('#'):
                continue
            parts = [p.strip() for p in line.rstrip('\n').split(' | ')]
            if len(parts) != 5 or not all(parts):
                fail('%s:%d: want "tool | check | file | flagged text | reason"' % (SUPPRESSIONS, n))
            entries.append(dict(lineno=n, tool=parts[0], check=parts[1], file=parts[2], text=parts[3],
                                reason=parts[4], used=False))
    return entries


def main():
    if len(sys.argv) != 2:
        fail('usage: check_static.py BUILD_DIR')
    for tool in ('cppcheck', 'clang-tidy'):
        if not shutil.which(tool):
            fail('%s is not installed (tools/packages.txt lists it: make deps)' % tool)
    jobs = os.cpu_count() or 2
    with tempfile.TemporaryDirectory() as tmp:
        files = src_commands(sys.argv[1], tmp)
        found = run_cppcheck(tmp, jobs)
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            for f in pool.map(lambda entry: tidy_one(tmp, entry), files):
                found += f
    # A header's finding shows up once per file that includes it.
    found = sorted(set(found), key=lambda x: (x[2], x[3], x[1]))
    entries = read_suppressions()
    bad = []
    for tool, check, file, line, msg in found:
        rel = os.path.relpath(file, ROOT)
        text = source_line(file, line)
        hit = [e for e in entries if e['tool'] == tool and e['file'] == rel and
               (e['check'] == check or check.startswith(e['check'] + ',')) and e['text'] in text]
        for e in hit:
            e['used'] = True
        if not hit:
            bad.append('%s:%d: [%s] %s (%s)' % (rel, line, check, msg, tool))
    stale = ['%s:%d: no longer matches a finding: remove it (%s %s %s)'
             % (os.path.relpath(SUPPRESSIONS, ROOT), e['lineno'], e['tool'], e['check'], e['file'])
             for e in entries if not e['used']]
    for b in bad + stale:
        print(b)
    suppressed = sum(1 for e in entries if e['used'])
    if bad or stale:
        print('FAIL: %d finding(s), %d stale suppression(s) (%d files)' % (len(bad), len(stale), len(files)))
        return 1
    print('ok: cppcheck and clang-tidy clean over %d files in src/ (%d listed in %s)'
          % (len(files), suppressed, os.path.relpath(SUPPRESSIONS, ROOT)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
