/*
 * app.c - assembles what handlers use (store, key ring, audit) from the
 * configuration, at start-up, before the network is touched.
 */
#include "app.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "store.h"

#include <stdlib.h>

int app_open(struct app *app, const struct config *cfg, char *err, size_t errlen)
{
    app->cfg = cfg;
    app->argon2 = (struct crypto_argon2){ cfg->argon2_m_kib, cfg->argon2_t, cfg->argon2_p };
    int rc = crypto_new(&app->crypto, cfg, err, errlen);
    if (rc == 0)
        rc = store_open(&app->store, cfg->db_path, err, errlen);
    /* The serving connection never checkpoints itself: checkpoints fsync,
     * and app_checkpoint_job runs them on the thread pool instead. */
    if (rc == 0)
        rc = store_set_autocheckpoint(app->store, false);
    if (rc) {
        app_close(app);
        return rc;
    }
    return 0;
}

void app_close(struct app *app)
{
    store_close(app->store);
    crypto_free(app->crypto);
    app->store = NULL;
    app->crypto = NULL;
}

struct checkpoint_job {
    struct http_job base;
    const char *db_path;
    int rc;
};

static void checkpoint_work(struct http_job *base)
{
    struct checkpoint_job *j = (struct checkpoint_job *)base;
    char err[256];
    struct store *own = NULL;
    j->rc = store_open(&own, j->db_path, err, sizeof(err));
    if (j->rc == 0)
        j->rc = store_checkpoint(own);
    store_close(own);
}

static void checkpoint_done(struct http_job *base, struct http_response *res)
{
    (void)res;
    struct checkpoint_job *j = (struct checkpoint_job *)base;
    if (j->rc)
        log_warn("WAL checkpoint failed (%s); will retry", err_name(j->rc));
    free(j);
}

struct http_job *app_checkpoint_job(void *arg)
{
    struct app *app = arg;
    struct checkpoint_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->base.work = checkpoint_work;
    j->base.done = checkpoint_done;
    j->db_path = app->cfg->db_path;
    return &j->base;
}
