/* A thin shim over SVT-AV1's encoder API for moq-pub's AV1 encoder (src/encode/svtav1.rs).
 *
 * Why not FFmpeg's libsvtav1 wrapper: in FFmpeg 5.1 it asks SVT-AV1 for a packet only when
 * it is handed a new frame, so every packet leaves two to three frames late (measured: 2.3–3.1
 * frames at 720p60). Here the caller polls for packets as soon as they are made (SVT-AV1 1.4
 * itself still holds each picture until the next one is sent: one frame, not three).
 *
 * Why C: the encoder's configuration is a large struct whose layout changes between SVT-AV1
 * releases; compiled against the installed headers, this file always matches the library.
 * It holds no logic beyond filling the structs and passing pointers through. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <EbSvtAv1.h>
#include <EbSvtAv1Enc.h>
#include <EbSvtAv1ErrorCodes.h>

struct lantern_svt_config {
    uint32_t width, height;
    uint32_t fps_num, fps_den;
    uint32_t kbps;
    /* Frames between keyframes (the first frame of each group is one); 0: the first only. */
    uint32_t keyint;
    /* Rate control buffer, in ms of the bitrate. */
    uint32_t buffer_ms;
    int32_t preset;
    /* 0: as many as the machine has. */
    uint32_t threads;
};

struct lantern_svt {
    EbComponentType *handle;
    EbSvtAv1EncConfiguration config;
    EbBufferHeaderType input;
    EbSvtIOFormat picture;
    EbBufferHeaderType *output;
    /* A picture has been sent; the end has been; the packet flagged as the last taken. */
    int sent, finished, ended;
};

int32_t lantern_svt_send(struct lantern_svt *svt, uint8_t *const planes[3],
                         const uint32_t strides[3], int64_t pts);

const char *lantern_svt_version(void) { return svt_av1_get_version(); }

int32_t lantern_svt_finish(struct lantern_svt *svt);

void lantern_svt_close(struct lantern_svt *svt) {
    if (!svt)
        return;
    if (svt->output)
        svt_av1_enc_release_out_buffer(&svt->output);
    if (svt->handle && svt->input.size) {
        /* SVT-AV1 1.4's deinit waits for the end to have come out, and no end comes out of
         * an encoder that never had a picture: give it a blank one, send the end and take
         * every packet up to it. */
        if (!svt->sent && !svt->finished) {
            uint32_t w = svt->config.source_width, h = svt->config.source_height;
            uint8_t *blank = calloc((size_t)w * h * 3 / 2, 1);
            if (blank) {
                uint8_t *planes[3] = {blank, blank + (size_t)w * h, blank + (size_t)w * h * 5 / 4};
                uint32_t strides[3] = {w, w / 2, w / 2};
                lantern_svt_send(svt, planes, strides, 0);
            }
            lantern_svt_finish(svt);
            free(blank);
        }
        if (!svt->finished)
            lantern_svt_finish(svt);
        while (!svt->ended) {
            EbBufferHeaderType *out = NULL;
            if (svt_av1_enc_get_packet(svt->handle, &out, 1) != EB_ErrorNone || !out)
                break;
            svt->ended = (out->flags & EB_BUFFERFLAG_EOS) != 0;
            svt_av1_enc_release_out_buffer(&out);
        }
    }
    if (svt->handle) {
        svt_av1_enc_deinit(svt->handle);
        svt_av1_enc_deinit_handle(svt->handle);
    }
    free(svt);
}

/* Returns EB_ErrorNone and the encoder in *out, or an SVT error (*out stays NULL). */
int32_t lantern_svt_open(const struct lantern_svt_config *c, struct lantern_svt **out) {
    *out = NULL;
    struct lantern_svt *svt = calloc(1, sizeof *svt);
    if (!svt)
        return EB_ErrorInsufficientResources;
    EbErrorType err = svt_av1_enc_init_handle(&svt->handle, svt, &svt->config);
    if (err != EB_ErrorNone) {
        svt->handle = NULL;
        lantern_svt_close(svt);
        return err;
    }
    EbSvtAv1EncConfiguration *p = &svt->config;
    p->source_width = c->width;
    p->source_height = c->height;
    p->frame_rate_numerator = c->fps_num;
    p->frame_rate_denominator = c->fps_den;
    p->encoder_bit_depth = 8;
    p->encoder_color_format = EB_YUV420;
    p->enc_mode = (int8_t)c->preset;
    /* Low delay: every frame references only earlier ones, nothing is held back. */
    p->pred_structure = 1;
    p->look_ahead_distance = 0;
    p->scene_change_detection = 0;
    /* Constant bitrate within a small buffer, as x264's VBV is set. */
    p->rate_control_mode = 2;
    p->target_bit_rate = c->kbps * 1000;
    p->maximum_buffer_size_ms = c->buffer_ms;
    p->starting_buffer_level_ms = c->buffer_ms * 2 / 3;
    p->optimal_buffer_level_ms = c->buffer_ms * 5 / 6;
    /* Keyframes are closed (IDR-like), where any viewer can start. SVT-AV1 1.4 cannot force
     * one in low-delay CBR: the caller opens a new encoder instead. */
    p->intra_period_length = c->keyint ? (int32_t)c->keyint - 1 : -1;
    p->intra_refresh_type = SVT_AV1_KF_REFRESH;
    if (c->threads)
        p->logical_processors = c->threads;
    err = svt_av1_enc_set_parameter(svt->handle, p);
    if (err == EB_ErrorNone)
        err = svt_av1_enc_init(svt->handle);
    if (err != EB_ErrorNone) {
        lantern_svt_close(svt);
        return err;
    }
    svt->input.size = sizeof svt->input;
    svt->input.p_buffer = (uint8_t *)&svt->picture;
    svt->input.n_alloc_len = sizeof svt->picture;
    *out = svt;
    return EB_ErrorNone;
}

/* Hand one I420 picture over; SVT-AV1 copies it before this returns. */
int32_t lantern_svt_send(struct lantern_svt *svt, uint8_t *const planes[3],
                         const uint32_t strides[3], int64_t pts) {
    svt->picture.luma = planes[0];
    svt->picture.cb = planes[1];
    svt->picture.cr = planes[2];
    svt->picture.y_stride = strides[0];
    svt->picture.cb_stride = strides[1];
    svt->picture.cr_stride = strides[2];
    svt->picture.width = svt->config.source_width;
    svt->picture.height = svt->config.source_height;
    svt->input.n_filled_len = strides[0] * svt->config.source_height +
                              (strides[1] + strides[2]) * ((svt->config.source_height + 1) / 2);
    svt->input.flags = 0;
    svt->input.pts = pts;
    svt->input.pic_type = EB_AV1_INVALID_PICTURE;
    svt->sent = 1;
    return svt_av1_enc_send_picture(svt->handle, &svt->input);
}

/* No more pictures: the packets still inside come out, then one flagged as the end. */
int32_t lantern_svt_finish(struct lantern_svt *svt) {
    if (svt->finished)
        return EB_ErrorNone;
    svt->finished = 1;
    EbBufferHeaderType last;
    memset(&last, 0, sizeof last);
    last.size = sizeof last;
    last.pic_type = EB_AV1_INVALID_PICTURE;
    last.flags = EB_BUFFERFLAG_EOS;
    return svt_av1_enc_send_picture(svt->handle, &last);
}

/* 1: a packet (valid until the next call or close), 0: none yet, 2: the end, <0: an error.
 * After lantern_svt_finish the call waits for the next packet. */
int32_t lantern_svt_receive(struct lantern_svt *svt, const uint8_t **data,
                            uint32_t *len, int64_t *pts, int *keyframe) {
    if (svt->output)
        svt_av1_enc_release_out_buffer(&svt->output);
    if (svt->ended)
        return 2;
    EbErrorType err = svt_av1_enc_get_packet(svt->handle, &svt->output, svt->finished);
    if (err == EB_NoErrorEmptyQueue) {
        svt->output = NULL;
        return 0;
    }
    if (err != EB_ErrorNone) {
        svt->output = NULL;
        return -1;
    }
    if (svt->output->flags & EB_BUFFERFLAG_EOS) {
        svt->ended = 1;
        if (svt->output->n_filled_len == 0)
            return 2;
    }
    *data = svt->output->p_buffer;
    *len = svt->output->n_filled_len;
    *pts = svt->output->pts;
    *keyframe = svt->output->pic_type == EB_AV1_KEY_PICTURE;
    return 1;
}
