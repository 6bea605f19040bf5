/*  mn_assets.h - the dashboard's files, compiled in (mn_assets.c is generated
    from monitoring/www/ by monitoring/gen_assets.sh). */
#ifndef MN_ASSETS_H_INCLUDED
#define MN_ASSETS_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *path;           //  "/index.html", "/app.js", "/app.css"
    const char *content_type;
    size_t size;
    const char *data;
} mn_asset_t;

//  The table, ended by an entry whose path is NULL.
extern const mn_asset_t mn_assets [];

#ifdef __cplusplus
}
#endif

#endif
