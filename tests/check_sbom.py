#!/usr/bin/env python3
"""tests/check_sbom.py BUILD_DIR NOTESD - the SBOM and `notesd --version
--verbose` agree with third_party/deps.lock, with the installed Debian
packages, and with each other.

Fails (exit 1, one line per problem) when:
 - tools/sbom.py fails, or its output is not CycloneDX 1.5 JSON with a
   serial number and a bom-ref per component;
 - a deps.lock row (package, version, file, SHA-256) is not in the SBOM;
 - a Debian package whose static library notesd links (libuv1-dev,
   libsqlite3-dev, libargon2-dev, libutf8proc-dev) is missing or does not
   carry the version dpkg-query reports;
 - `notesd --version --verbose` does not name each library, or the version
   the linked code reports is not the upstream part of the SBOM's version,
   or the origin it prints is not the SBOM's package and version.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATIC_DEBS = ['libuv1-dev', 'libsqlite3-dev', 'libargon2-dev', 'libutf8proc-dev']
VERBOSE_NAMES = ['notesd', 'mbedTLS', 'llhttp', 'SQLite', 'libuv', 'cJSON', 'argon2', 'utf8proc',
                 'common-passwords', 'glibc']

problems = []


def fail(msg):
    problems.append(msg)


def props(c, name):
    return [p['value'] for p in c.get('properties', []) if p['name'] == 'notesd:' + name]


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: check_sbom.py BUILD_DIR NOTESD')
    build, notesd = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'notesd.cdx.json')
        r = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'sbom.py'), build, '-o', out],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            sys.exit('FAIL: tools/sbom.py: ' + r.stderr.strip())
        with open(out, encoding='utf-8') as f:
            bom = json.load(f)

    if bom.get('bomFormat') != 'CycloneDX' or bom.get('specVersion') != '1.5':
        fail('not a CycloneDX 1.5 document')
    if not str(bom.get('serialNumber', '')).startswith('urn:uuid:'):
        fail('no serialNumber')
    comps = bom.get('components', [])
    by_name = {c['name']: c for c in comps}
    refs = [c.get('bom-ref') for c in comps]
    if None in refs or len(set(refs)) != len(refs):
        fail('every component needs a unique bom-ref')
    deps = {d['ref']: d['dependsOn'] for d in bom.get('dependencies', [])}
    if sorted(deps.get('notesd', [])) != sorted(refs):
        fail('notesd does not depend on every component')

    # Every lock row, file by file.
    rows = 0
    with open(os.path.join(ROOT, 'third_party', 'deps.lock'), encoding='utf-8') as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            kind, suite, pkg, version, name, sha = line.split()
            rows += 1
            c = by_name.get(pkg)
            if not c:
                fail('deps.lock pins %s, the SBOM does not list it' % pkg)
                continue
            if c.get('version') != version:
                fail('%s: SBOM version %s, deps.lock %s' % (pkg, c.get('version'), version))
            if '%s sha256:%s' % (name, sha) not in props(c, 'lock-file'):
                fail('%s: the SBOM lacks %s with sha256 %s' % (pkg, name, sha))
            if suite not in c.get('purl', '') or props(c, 'lock-kind') != [kind]:
                fail('%s: suite or kind differ from deps.lock' % pkg)
    if rows == 0:
        fail('deps.lock has no rows')

    # The Debian packages linked statically, at their installed versions.
    for pkg in STATIC_DEBS:
        c = by_name.get(pkg)
        v = subprocess.run(['dpkg-query', '-W', '-f=${Version}', pkg], capture_output=True, text=True,
                           check=False).stdout
        if not c:
            fail('%s is linked statically, the SBOM does not list it' % pkg)
        elif c.get('version') != v or props(c, 'linkage') != ['static']:
            fail('%s: SBOM says %s (%s), dpkg says %s' % (pkg, c.get('version'), props(c, 'linkage'), v))
        elif not any(p.startswith('/') and ' sha256:' in p for p in props(c, 'linked-sha256')):
            fail('%s: no SHA-256 of the linked archive' % pkg)

    # notesd --version --verbose, line by line.
    r = subprocess.run([notesd, '--version', '--verbose'], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        fail('notesd --version --verbose exits %d' % r.returncode)
    lines = {l.split(' ', 1)[0]: l for l in r.stdout.splitlines() if l}
    for name in VERBOSE_NAMES:
        if name not in lines:
            fail('notesd --version --verbose does not name %s' % name)
    for c in comps:
        shown = (props(c, 'display-name') or [c['name']])[0]
        line = lines.get(shown)
        if line is None and props(c, 'linkage') == ['dynamic'] and shown not in VERBOSE_NAMES:
            continue           # a sanitizer build's runtime (libasan, libubsan)
        if line is None:
            fail('%s (%s) is in the SBOM but not in notesd --version --verbose' % (c['name'], shown))
            continue
        reported = line.split(' ')[1]
        up = props(c, 'upstream-version')[0]
        if shown != 'common-passwords' and not (up.startswith(reported) or reported == c['version']):
            fail('%s: the linked code reports %s, the SBOM has %s (upstream %s)'
                 % (shown, reported, c['version'], up))
        if props(c, 'linkage') != ['dynamic'] and 'from %s %s,' % (c['name'], c['version']) not in line:
            fail('%s: notesd --version --verbose does not say it came from %s %s: %s'
                 % (shown, c['name'], c['version'], line))
    version = bom['metadata']['component']['version']
    if lines.get('notesd') != 'notesd ' + version:
        fail('notesd --version says %r, the SBOM %s' % (lines.get('notesd'), version))

    for p in problems:
        print('FAIL: ' + p)
    if problems:
        return 1
    print('ok: %d lock rows, %d components, --version --verbose agrees' % (rows, len(comps)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
