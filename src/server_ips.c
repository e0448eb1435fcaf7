/*
 * server_ips.c - open connections per remote address, for the per-IP cap.
 *
 * A chained hash table keyed by the 16-byte address (IPv4 mapped into IPv6),
 * hashed with a per-process random key so a client cannot aim many
 * addresses at one bucket. An entry lives exactly as long as its address
 * has a connection open, so memory is bounded by the global cap.
 */
#include "server_int.h"
#include "ratelimit.h"
#include "crypto.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

void server_addr_key(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
}

/* FNV-1a over key and address: not cryptographic, but keyed at random. */
static size_t bucket_of(const struct server_ips *t, const uint8_t addr[16])
{
    uint32_t h = 2166136261u ^ t->key;
    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 16777619u;
    return h % SERVER_IP_BUCKETS;
}

struct server_ip *server_ip_acquire(struct server_ips *t, const struct sockaddr *sa, uint32_t cap)
{
    if (t->key == 0 && crypto_random(&t->key, sizeof(t->key)) != 0)
        t->key = 0x9e3779b9u;
    uint8_t peer[16], addr[16];
    server_addr_key(sa, peer);
    ratelimit_addr_key(peer, addr);   /* an IPv6 client by its /64 */
    struct server_ip **head = &t->bucket[bucket_of(t, addr)];
    for (struct server_ip *ip = *head; ip; ip = ip->next)
        if (memcmp(ip->addr, addr, 16) == 0) {
            if (ip->count >= cap)
                return NULL;
            ip->count++;
            return ip;
        }
    struct server_ip *ip = calloc(1, sizeof(*ip));
    if (!ip || cap == 0) {
        free(ip);
        return NULL;
    }
    memcpy(ip->addr, addr, 16);
    ip->count = 1;
    ip->next = *head;
    *head = ip;
    return ip;
}

void server_ip_release(struct server_ips *t, struct server_ip *ip)
{
    if (!ip || --ip->count > 0)
        return;
    for (struct server_ip **p = &t->bucket[bucket_of(t, ip->addr)]; *p; p = &(*p)->next)
        if (*p == ip) {
            *p = ip->next;
            free(ip);
            return;
        }
}

void server_ips_cleanup(struct server_ips *t)
{
    for (size_t i = 0; i < SERVER_IP_BUCKETS; i++)
        while (t->bucket[i]) {
            struct server_ip *ip = t->bucket[i];
            t->bucket[i] = ip->next;
            free(ip);
        }
}
