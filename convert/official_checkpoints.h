/* convert/official_checkpoints.h: the official SAM2.1 checkpoint files (release 092824 of
 * facebookresearch/sam2, checkpoints/download_ckpts.sh) with their sizes and sha256.
 *
 * samc_convert uses this table to tell a corrupted or incomplete download of an official
 * file from a real format problem. Where the numbers come from: weights/README.md. */
#ifndef SAMC_OFFICIAL_CHECKPOINTS_H
#define SAMC_OFFICIAL_CHECKPOINTS_H
#include <stdint.h>

typedef struct {
    const char *file;     /* "sam2.1_hiera_large.pt" */
    const char *config;   /* synth config name: "tiny", "small", "base_plus", "large" */
    int64_t size;         /* bytes */
    const char *sha256;   /* lowercase hex */
    const char *url;
} official_checkpoint;

/* The entry whose file name equals the last path component of `path`, or NULL. */
/* Number of entries (the four official sizes). */
int official_checkpoint_count(void);
const official_checkpoint *official_checkpoint_find(const char *path);

#endif
