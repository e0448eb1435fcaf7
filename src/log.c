/*
 * log.c - operational log lines on stderr.
 *
 * Each line is "<UTC time> notesd[<pid>] <level>: <message>\n", written with
 * a single write(2) so lines from the thread pool never interleave. Bytes
 * below 0x20 (and DEL) in the formatted message are replaced by '?', so even
 * a careless caller cannot let input start a new line.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    min_level = level;
}

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_DEBUG: return "debug";
    case LOG_INFO: return "info";
    case LOG_WARN: return "warning";
    case LOG_ERROR: return "error";
    }
    return "?";
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[1280];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ notesd[%ld] %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, (long)getpid(), level_name(level));
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    size_t head = (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + head, sizeof(line) - head - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = head + ((size_t)m < sizeof(line) - head - 1 ? (size_t)m : sizeof(line) - head - 2);
    for (size_t i = head; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}
