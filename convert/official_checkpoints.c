/* convert/official_checkpoints.c: the table of convert/official_checkpoints.h.
 *
 * URLs: facebookresearch/sam2 checkpoints/download_ckpts.sh (SAM 2.1 base URL
 * https://dl.fbaipublicfiles.com/segment_anything_2/092824/). Sizes and sha256: Meta does
 * not publish them; these are the Git LFS pointers of Hugging Face re-uploads of the same
 * files (see weights/README.md for the sources and their agreement). */
#include "convert/official_checkpoints.h"

#include <string.h>

#define SAM21_URL "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"

static const official_checkpoint table[] = {
    { "sam2.1_hiera_tiny.pt", "tiny", 156008466,
      "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69", SAM21_URL "sam2.1_hiera_tiny.pt" },
    { "sam2.1_hiera_small.pt", "small", 184416285,
      "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38", SAM21_URL "sam2.1_hiera_small.pt" },
    { "sam2.1_hiera_base_plus.pt", "base_plus", 323606802,
      "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5", SAM21_URL "sam2.1_hiera_base_plus.pt" },
    { "sam2.1_hiera_large.pt", "large", 898083611,
      "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318", SAM21_URL "sam2.1_hiera_large.pt" },
};

int official_checkpoint_count(void) { return (int)(sizeof table / sizeof table[0]); }

const official_checkpoint *official_checkpoint_find(const char *path) {
    if (!path) return NULL;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (int i = 0; i < official_checkpoint_count(); i++)
        if (strcmp(table[i].file, base) == 0) return &table[i];
    return NULL;
}
