/* convert/convert_report.h: what samc_convert_ex (convert/convert.h) found and wrote; its
 * own header so that the family converters (convert/sam3_convert.c) fill it without
 * depending on the dispatcher. */
#ifndef SAMC_CONVERT_REPORT_H
#define SAMC_CONVERT_REPORT_H

/* What a conversion found and wrote. */
typedef struct {
    char family[16];      /* "SAM2.1" or "SAM3" */
    char config[32];      /* "large", "sam3", "sam3_micro", ... */
    char layout[32];      /* "pt", "safetensors" or "transformers" */
    int n_written;        /* tensors in the output */
    /* SAM3 only */
    int n_video_kept, n_video_dropped;  /* tracker tensors and "detector." tensors the
                                           image model does not use (sam3.pt), or
                                           transformers' tracker_model / tracker_neck */
    char first_unused[128];             /* first "detector." tensor the image model does not use */
    int vocab_embedded;                 /* tokenizer.bpe_merges written */
    int points_zeroed;                  /* transformers layout: the geometry encoder's point
                                           projections (absent there) written as zeros */
} samc_convert_report;

#endif
