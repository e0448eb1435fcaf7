/*
 * json.c - JSON string escaping (and, later, the cJSON-backed body parser).
 */
#include "json.h"
#include "err.h"

#include <cJSON.h>

int json_append_string(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            rc = buf_append(b, esc, 2);
        } else if (c == '\n') {
            rc = buf_append(b, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            rc = buf_append(b, esc, 6);
        } else {
            rc = buf_append(b, &s[i], 1);
        }
    }
    return rc ? rc : buf_append(b, "\"", 1);
}

const char *json_library_version(void)
{
    return cJSON_Version();
}
