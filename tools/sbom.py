#!/usr/bin/env python3
"""tools/sbom.py - a CycloneDX 1.5 JSON SBOM of what is linked into notesd.

Usage: tools/sbom.py BUILD_DIR [-o FILE]   (make sbom: BUILD_DIR/notesd.cdx.json)

The component list comes from the build itself, not from a hand-kept list:
 - the link line of the `notesd` target in BUILD_DIR/build.ninja names every
   static archive linked in. Archives under the third-party prefix, and the
   sources compiled from it (cJSON.c, common_passwords.c), map to rows of
   third_party/deps.lock: each such component carries the lock's version,
   suite and every pinned file with its SHA-256 (the .dsc or .deb hash is
   the component hash). Any other archive is resolved to its Debian package
   with dpkg-query (version, source package, the archive's own SHA-256 and,
   when apt knows it, the .deb's SHA-256).
 - the ELF's DT_NEEDED entries (readelf) name the shared libraries; those
   are listed too, as dynamically linked.
A lock row that maps to nothing linked, or a prefix archive that maps to no
lock row, is an error: the SBOM and the lock never silently disagree.

Output is deterministic for one build: the serial number is derived from the
content and the timestamp is SOURCE_DATE_EPOCH, else the commit's time.
Nothing here reaches the network; apt-cache reads the local package lists.
"""
import argparse
import functools
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK = os.path.join(ROOT, 'third_party', 'deps.lock')

# What in the third-party prefix comes from which lock package, and what the
# linked code calls itself (`notesd --version --verbose` uses these names).
PREFIX_FILES = {
    'lib/libmbedtls.a': 'mbedtls',
    'lib/libmbedx509.a': 'mbedtls',
    'lib/libmbedcrypto.a': 'mbedtls',
    'lib/libllhttp.a': 'libllhttp-dev',
    'src/cJSON.c': 'cjson',
    'src/common_passwords.c': 'python3-zxcvbn',
}
DISPLAY = {
    'mbedtls': 'mbedTLS', 'libllhttp-dev': 'llhttp', 'cjson': 'cJSON',
    'python3-zxcvbn': 'common-passwords', 'libuv1-dev': 'libuv', 'libsqlite3-dev': 'SQLite',
    'libargon2-dev': 'argon2', 'libutf8proc-dev': 'utf8proc', 'libc6': 'glibc',
    'libseccomp-dev': 'libseccomp',
}


def die(msg):
    sys.exit('tools/sbom.py: ' + msg)


def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return r.stdout if r.returncode == 0 else None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 16), b''):
            h.update(block)
    return h.hexdigest()


def read_lock():
    rows = []
    with open(LOCK, encoding='utf-8') as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            cols = line.split()
            if len(cols) != 6:
                die('deps.lock: a row needs 6 columns: ' + line.strip())
            kind, suite, pkg, version, name, sha = cols
            rows.append(dict(kind=kind, suite=suite, package=pkg, version=version, file=name, sha256=sha))
    return rows


def link_inputs(build):
    """Static archives and shared-library flags on notesd's link line."""
    with open(os.path.join(build, 'build.ninja'), encoding='utf-8') as f:
        text = f.read()
    m = re.search(r'^build notesd: c_LINKER .*?\n LINK_ARGS = (.*?)\n', text, re.M | re.S)
    if not m:
        die('no link line for notesd in %s/build.ninja (build first)' % build)
    archives = []
    for arg in shlex.split(m.group(1)):
        if arg.endswith('.a'):
            path = arg if os.path.isabs(arg) else os.path.join(build, arg)
            archives.append(os.path.realpath(path))
    return archives


def prefix_of(build):
    info = os.path.join(build, 'meson-info', 'intro-buildoptions.json')
    deps_dir = ''
    if os.path.exists(info):
        with open(info, encoding='utf-8') as f:
            for opt in json.load(f):
                if opt['name'] == 'deps_dir':
                    deps_dir = opt['value']
    return os.path.realpath(os.path.join(deps_dir or os.path.join(ROOT, 'third_party', 'build'), 'prefix'))


def dpkg_owner(path):
    """The Debian package that installed `path` (tries the /usr-merged twin)."""
    candidates = [path]
    if path.startswith('/usr/lib/'):
        candidates.append(path[len('/usr'):])
    elif path.startswith('/lib/'):
        candidates.append('/usr' + path)
    for p in candidates:
        out = run('dpkg-query', '-S', p)
        if out:
            return out.split(':', 1)[0].strip()
    return None


def dpkg_fields(pkg):
    out = run('dpkg-query', '-W', '-f=${Version}\\t${source:Package}\\t${source:Version}\\t${Architecture}', pkg)
    if not out:
        die('dpkg-query knows no installed package ' + pkg)
    version, src, src_version, arch = out.split('\t')
    return version, src, src_version, arch


def deb_sha256(pkg, version):
    out = run('apt-cache', 'show', '%s=%s' % (pkg, version))
    m = re.search(r'^SHA256: ([0-9a-f]{64})$', out or '', re.M)
    return m.group(1) if m else None


def os_codename():
    try:
        with open('/etc/os-release', encoding='utf-8') as f:
            for line in f:
                if line.startswith('VERSION_CODENAME='):
                    return line.split('=', 1)[1].strip().strip('"')
    except OSError:
        pass
    return 'unknown'


@functools.lru_cache(maxsize=None)
def archive_uri():
    """The Debian archive this machine's apt is configured with (the one
    third_party/fetch.sh downloads from), or None. Never written in the
    repository: read from apt, like fetch.sh does."""
    out = run('apt-get', 'indextargets', '--format', '$(REPO_URI) $(RELEASE)') or ''
    codename = os_codename()
    uris = sorted({ln.split()[0] for ln in out.splitlines()
                   if len(ln.split()) == 2 and ln.split()[1] == codename})
    return uris[0] if uris else None


def pool_dir(src):
    """The archive's pool folder of a source package (Debian's layout)."""
    uri = archive_uri()
    if not uri:
        return None
    letter = src[:4] if src.startswith('lib') else src[:1]
    return '%s/pool/main/%s/%s/' % (uri.rstrip('/'), letter, src)


def upstream(version):
    """Debian version -> upstream part: drop epoch and revision."""
    v = version.split(':', 1)[-1]
    return v.rsplit('-', 1)[0] if '-' in v else v


def tracker(src):
    return {'type': 'advisories', 'url': 'https://security-tracker.debian.org/tracker/source-package/' + src,
            'comment': 'Debian security tracker: open and fixed CVEs of this source package'}


def prop(name, value):
    return {'name': 'notesd:' + name, 'value': value}


def lock_component(pkg, rows, linked, build):
    first = rows[0]
    src = pkg if first['kind'] == 'source' else None
    if src is None:
        # The source package of a pinned .deb, from the fetched file when present.
        deb = os.path.join(os.path.dirname(prefix_of(build)), 'cache', first['file'])
        out = run('dpkg-deb', '-f', deb, 'Source') if os.path.exists(deb) else None
        src = (out or '').split(' ')[0].strip() or pkg
    arch = 'source' if first['kind'] == 'source' else first['file'].rsplit('_', 1)[-1].split('.')[0]
    primary = next((r for r in rows if r['file'].endswith(('.dsc', '.deb'))), first)
    pool = pool_dir(src)
    comp = {
        'type': 'library',
        'bom-ref': 'lock:' + pkg,
        'name': pkg,
        'version': first['version'],
        'description': '%s, pinned in third_party/deps.lock and built by third_party/fetch.sh'
                       % DISPLAY.get(pkg, pkg),
        'hashes': [{'alg': 'SHA-256', 'content': primary['sha256']}],
        'purl': 'pkg:deb/debian/%s@%s?arch=%s&distro=%s' % (pkg, first['version'], arch, first['suite']),
        'externalReferences': [tracker(src)] + ([{
            'type': 'distribution', 'url': pool,
            'comment': 'where the pinned files were fetched: the pool folder of the Debian archive '
                       'this machine\'s apt is configured with'}] if pool else []),
        'properties': [prop('origin', 'deps.lock'), prop('lock-kind', first['kind']),
                       prop('debian-suite', first['suite']), prop('source-package', src),
                       prop('upstream-version', upstream(first['version'])),
                       prop('linkage', 'compiled in' if any(x.endswith('.c') for x in linked) else 'static'),
                       prop('display-name', DISPLAY.get(pkg, pkg))]
                      + [prop('linked', x) for x in sorted(linked)]
                      + [prop('lock-file', '%s sha256:%s' % (r['file'], r['sha256'])) for r in rows],
    }
    return comp


def deb_component(pkg, files, linkage):
    version, src, src_version, arch = dpkg_fields(pkg)
    hashes = []
    deb = deb_sha256(pkg, version)
    if deb:
        hashes.append({'alg': 'SHA-256', 'content': deb})
    props = [prop('origin', 'dpkg'), prop('linkage', linkage), prop('source-package', src),
             prop('source-version', src_version or version), prop('upstream-version', upstream(version)),
             prop('display-name', DISPLAY.get(pkg, pkg))]
    for f in sorted(files):
        props.append(prop('linked', f))
        props.append(prop('linked-sha256', '%s sha256:%s' % (f, sha256_file(f))))
    comp = {
        'type': 'library',
        'bom-ref': 'deb:' + pkg,
        'name': pkg,
        'version': version,
        'description': '%s, the installed Debian package whose %s library is linked'
                       % (DISPLAY.get(pkg, pkg), 'static' if linkage == 'static' else 'shared'),
        'purl': 'pkg:deb/debian/%s@%s?arch=%s&distro=%s' % (pkg, version, arch, os_codename()),
        'externalReferences': [tracker(src)],
        'properties': props,
    }
    if hashes:
        comp['hashes'] = hashes
    return comp


def needed_libs(binary):
    out = run('readelf', '-d', binary) or ''
    names = re.findall(r'\(NEEDED\)\s+Shared library: \[([^\]]+)\]', out)
    paths = {}
    ldd = run('ldd', binary) or ''
    for name in names:
        m = re.search(r'^\s*' + re.escape(name) + r' => (\S+)', ldd, re.M)
        if m:
            paths[name] = os.path.realpath(m.group(1)) if not os.path.exists(m.group(1)) else m.group(1)
    return paths


def timestamp():
    epoch = os.environ.get('SOURCE_DATE_EPOCH')
    if not epoch:
        epoch = run('git', '-C', ROOT, 'log', '-1', '--format=%ct')
    t = int(epoch.strip()) if epoch and epoch.strip() else 0
    return datetime.fromtimestamp(t, timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def project_version():
    with open(os.path.join(ROOT, 'meson.build'), encoding='utf-8') as f:
        m = re.search(r"version\s*:\s*'([^']+)'", f.read())
    return m.group(1) if m else 'unknown'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('build')
    ap.add_argument('-o', '--output')
    args = ap.parse_args()
    build = os.path.realpath(args.build)
    prefix = prefix_of(build)
    lock = read_lock()

    # Lock components: what the link line and the compiled-in sources use.
    linked_from_lock = {}
    debs = {}
    for path in link_inputs(build):
        if path.startswith(prefix + os.sep):
            rel = os.path.relpath(path, prefix)
            if rel not in PREFIX_FILES:
                die('%s is linked from the third-party prefix but maps to no deps.lock row '
                    '(add it to PREFIX_FILES)' % rel)
            linked_from_lock.setdefault(PREFIX_FILES[rel], set()).add(rel)
        elif path.startswith(build + os.sep):
            continue           # our own archives (libnotesd_core.a, libcjson.a)
        else:
            pkg = dpkg_owner(path)
            if not pkg:
                die('%s is linked but no Debian package owns it' % path)
            debs.setdefault(pkg, set()).add(path)
    for rel, pkg in PREFIX_FILES.items():
        if rel.startswith('src/') and os.path.exists(os.path.join(prefix, rel)):
            linked_from_lock.setdefault(pkg, set()).add(rel)

    by_pkg = {}
    for row in lock:
        by_pkg.setdefault(row['package'], []).append(row)
    for pkg in by_pkg:
        if pkg not in linked_from_lock:
            die('deps.lock pins %s but nothing from it is linked into notesd' % pkg)

    components = [lock_component(pkg, rows, linked_from_lock[pkg], build) for pkg, rows in by_pkg.items()]
    components += [deb_component(pkg, files, 'static') for pkg, files in sorted(debs.items())]
    binary = os.path.join(build, 'notesd')
    shared = {}
    for name, path in needed_libs(binary).items():
        pkg = dpkg_owner(path)
        if not pkg:
            die('%s (%s) is needed at run time but no Debian package owns it' % (name, path))
        shared.setdefault(pkg, set()).add(path)
    components += [deb_component(pkg, files, 'dynamic') for pkg, files in sorted(shared.items())
                   if pkg not in debs]

    version = project_version()
    commit = (run('git', '-C', ROOT, 'rev-parse', 'HEAD') or '').strip()
    bom = {
        'bomFormat': 'CycloneDX',
        'specVersion': '1.5',
        'version': 1,
        'metadata': {
            'timestamp': timestamp(),
            'tools': {'components': [{'type': 'application', 'name': 'notesd tools/sbom.py'}]},
            'component': {
                'type': 'application', 'bom-ref': 'notesd', 'name': 'notesd', 'version': version,
                'description': 'hardened HTTPS Note API server',
                'hashes': [{'alg': 'SHA-256', 'content': sha256_file(binary)}] if os.path.exists(binary) else [],
                'properties': [prop('git-commit', commit)] if commit else [],
            },
        },
        'components': components,
        'dependencies': [{'ref': 'notesd', 'dependsOn': [c['bom-ref'] for c in components]}]
                        + [{'ref': c['bom-ref'], 'dependsOn': []} for c in components],
    }
    body = json.dumps(bom, indent=2, sort_keys=False)
    bom = {'bomFormat': bom['bomFormat'], 'specVersion': bom['specVersion'],
           'serialNumber': 'urn:uuid:' + str(uuid.uuid5(uuid.NAMESPACE_URL, 'notesd-sbom:' + body)),
           **{k: v for k, v in bom.items() if k not in ('bomFormat', 'specVersion')}}
    text = json.dumps(bom, indent=2) + '\n'
    if args.output:
        tmp = args.output + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, args.output)
    else:
        sys.stdout.write(text)


if __name__ == '__main__':
    main()
