/*
 * sanitizer_options.c - default options linked into sanitizer builds of the
 * notesd binary, never into a release build (see meson.build).
 *
 * The integration tests start notesd with an environment of their own, so
 * the ASAN_OPTIONS and UBSAN_OPTIONS that `make test-asan` sets never reach
 * the server. These defaults make a report from the server as loud as one
 * from a test: any report is fatal, and every report is also written to the
 * build's sanitizer-reports folder, which `make test-asan` requires to be
 * empty. An *_OPTIONS variable, when present, still overrides them (for
 * example log_path=stderr while debugging by hand).
 *
 * The quarantine (freed memory ASan holds back to catch use after free) is
 * cut from 256 to 16 MiB: the edge tests bound the server's RSS under a
 * flood, and a quarantine full of freed response buffers is not the
 * server's memory. Recent frees are still caught.
 */
#ifndef NOTESD_SANITIZER_REPORTS
#error "meson.build defines NOTESD_SANITIZER_REPORTS and NOTESD_LSAN_SUPP"
#endif

const char *__asan_default_options(void);
const char *__ubsan_default_options(void);
const char *__lsan_default_options(void);

const char *__asan_default_options(void)
{
    return "detect_leaks=1:abort_on_error=1:quarantine_size_mb=16:log_path=" NOTESD_SANITIZER_REPORTS "/asan";
}

const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=" NOTESD_SANITIZER_REPORTS "/ubsan";
}

const char *__lsan_default_options(void)
{
    return "suppressions=" NOTESD_LSAN_SUPP;
}
