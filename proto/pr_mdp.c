/*  pr_mdp.c - Majordomo frames (RFC 7/MDP 0.1 and RFC 18/MDP 0.2), checked.
*/
#include "pr_mdp.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static int
s_fail (const char **why, const char *reason, int code)
{
    if (why)
        *why = reason;
    return code;
}

bool
pr_frame_is (pr_frame_t frame, const char *s)
{
    size_t len = strlen (s);
    return frame.size == len && (len == 0 || memcmp (frame.data, s, len) == 0);
}

bool
pr_mdp_service_valid (const uint8_t *data, size_t size)
{
    if (size == 0 || size > PR_MDP_SERVICE_MAX)
        return false;
    for (size_t i = 0; i < size; i++) {
        uint8_t c = data [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
               || c == '.' || c == '_' || c == '-' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

bool
pr_mdp_id_valid (const uint8_t *data, size_t size)
{
    if (size != PR_MDP_ID_LEN)
        return false;
    for (size_t i = 0; i < size; i++) {
        uint8_t c = data [i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

const char *
pr_mdp_header (int version, pr_mdp_role_t role)
{
    assert (version == 1 || version == 2);
    if (version == 1)
        return role == PR_MDP_CLIENT ? PR_MDPC01 : PR_MDPW01;
    return role == PR_MDP_CLIENT ? PR_MDPC02 : PR_MDPW02;
}

int
pr_mdp_cmd_byte (int version, pr_mdp_role_t role, pr_mdp_cmd_t command)
{
    if (role == PR_MDP_CLIENT) {
        if (version != 2)
            return -1;
        switch (command) {
            case PR_MDP_REQUEST: return 0x01;
            case PR_MDP_PARTIAL: return 0x02;
            case PR_MDP_FINAL:   return 0x03;
            default:             return -1;
        }
    }
    if (version == 1) {
        switch (command) {
            case PR_MDP_READY:      return 0x01;
            case PR_MDP_REQUEST:    return 0x02;
            case PR_MDP_FINAL:      return 0x03;
            case PR_MDP_HEARTBEAT:  return 0x04;
            case PR_MDP_DISCONNECT: return 0x05;
            default:                return -1;
        }
    }
    switch (command) {
        case PR_MDP_READY:      return 0x01;
        case PR_MDP_REQUEST:    return 0x02;
        case PR_MDP_PARTIAL:    return 0x03;
        case PR_MDP_FINAL:      return 0x04;
        case PR_MDP_HEARTBEAT:  return 0x05;
        case PR_MDP_DISCONNECT: return 0x06;
        default:                return -1;
    }
}

//  Maps a command byte back; returns 0 when unknown.
static pr_mdp_cmd_t
s_cmd_from_byte (int version, pr_mdp_role_t role, uint8_t byte)
{
    for (int c = PR_MDP_REQUEST; c <= PR_MDP_DISCONNECT; c++)
        if (pr_mdp_cmd_byte (version, role, (pr_mdp_cmd_t) c) == byte)
            return (pr_mdp_cmd_t) c;
    return (pr_mdp_cmd_t) 0;
}

int
pr_mdp_parse (const pr_frame_t *frames, size_t count, pr_mdp_msg_t *msg, const char **why)
{
    assert (msg);
    memset (msg, 0, sizeof *msg);
    if (count == 0 || (count > 0 && !frames))
        return s_fail (why, "no frames", PR_MDP_EHEADER);

    //  Version and role from the header.
    size_t at;                  //  index of the frame after the protocol header
    if (frames [0].size == 0) {
        if (count < 2)
            return s_fail (why, "empty frame without protocol header", PR_MDP_EHEADER);
        if (pr_frame_is (frames [1], PR_MDPC01))
            msg->role = PR_MDP_CLIENT;
        else
        if (pr_frame_is (frames [1], PR_MDPW01))
            msg->role = PR_MDP_WORKER;
        else
            return s_fail (why, "unknown protocol header after empty frame", PR_MDP_EHEADER);
        msg->version = 1;
        at = 2;
    }
    else {
        if (pr_frame_is (frames [0], PR_MDPC02))
            msg->role = PR_MDP_CLIENT;
        else
        if (pr_frame_is (frames [0], PR_MDPW02))
            msg->role = PR_MDP_WORKER;
        else
            return s_fail (why, "unknown protocol header", PR_MDP_EHEADER);
        msg->version = 2;
        at = 1;
    }

    //  0.1 client: service, body...
    if (msg->role == PR_MDP_CLIENT && msg->version == 1) {
        if (count < at + 1)
            return s_fail (why, "client request without service frame", PR_MDP_ECOMMAND);
        msg->command = PR_MDP_REQUEST;
    }
    else {
        if (count < at + 1)
            return s_fail (why, "missing command frame", PR_MDP_ECOMMAND);
        if (frames [at].size != 1)
            return s_fail (why, "command frame is not one byte", PR_MDP_ECOMMAND);
        msg->command = s_cmd_from_byte (msg->version, msg->role, frames [at].data [0]);
        if (msg->command == 0)
            return s_fail (why, "unknown command", PR_MDP_ECOMMAND);
        at++;
    }

    if (msg->role == PR_MDP_CLIENT) {
        if (msg->command != PR_MDP_REQUEST)
            return s_fail (why, "client may only send REQUEST", PR_MDP_ECOMMAND);
        if (count < at + 1)
            return s_fail (why, "client request without service frame", PR_MDP_ECOMMAND);
        msg->service = frames [at];
        msg->body = at + 1;
        msg->nbody = count - at - 1;
        if (!pr_mdp_service_valid (msg->service.data, msg->service.size))
            return s_fail (why, "bad service name", PR_MDP_ESERVICE);
        return PR_MDP_OK;
    }

    switch (msg->command) {
        case PR_MDP_READY:
            if (count != at + 1)
                return s_fail (why, "READY needs exactly one service frame", PR_MDP_ECOMMAND);
            msg->service = frames [at];
            if (!pr_mdp_service_valid (msg->service.data, msg->service.size))
                return s_fail (why, "bad service name", PR_MDP_ESERVICE);
            return PR_MDP_OK;
        case PR_MDP_REQUEST:
        case PR_MDP_PARTIAL:
        case PR_MDP_FINAL:
            if (count < at + 2)
                return s_fail (why, "missing client address or empty frame", PR_MDP_ECOMMAND);
            if (frames [at + 1].size != 0)
                return s_fail (why, "frame after client address is not empty", PR_MDP_ECOMMAND);
            msg->address = frames [at];
            msg->body = at + 2;
            msg->nbody = count - at - 2;
            return PR_MDP_OK;
        case PR_MDP_HEARTBEAT:
        case PR_MDP_DISCONNECT:
            if (count != at)
                return s_fail (why, "HEARTBEAT/DISCONNECT take no frames", PR_MDP_ECOMMAND);
            return PR_MDP_OK;
        default:
            return s_fail (why, "unknown command", PR_MDP_ECOMMAND);
    }
}


//  --------------------------------------------------------------------------
//  Selftest

#define F(s) { (const uint8_t *) (s), sizeof (s) - 1 }

void
pr_mdp_test (bool verbose)
{
    (void) verbose;
    pr_mdp_msg_t m;
    const char *why = NULL;

    //  0.1 client
    pr_frame_t c1 [] = { F (""), F ("MDPC01"), F ("echo"), F ("hello"), F ("world") };
    assert (pr_mdp_parse (c1, 5, &m, &why) == PR_MDP_OK);
    assert (m.version == 1 && m.role == PR_MDP_CLIENT && m.command == PR_MDP_REQUEST);
    assert (pr_frame_is (m.service, "echo") && m.body == 3 && m.nbody == 2);
    assert (pr_mdp_parse (c1, 3, &m, NULL) == PR_MDP_OK && m.nbody == 0);
    assert (pr_mdp_parse (c1, 2, &m, &why) == PR_MDP_ECOMMAND);
    assert (m.version == 1 && m.role == PR_MDP_CLIENT);

    //  0.2 client
    pr_frame_t c2 [] = { F ("MDPC02"), F ("\x01"), F ("titanic.request"), F ("x") };
    assert (pr_mdp_parse (c2, 4, &m, NULL) == PR_MDP_OK);
    assert (m.version == 2 && m.command == PR_MDP_REQUEST && m.nbody == 1 && m.body == 3);
    pr_frame_t c2b [] = { F ("MDPC02"), F ("\x03"), F ("svc") };
    assert (pr_mdp_parse (c2b, 3, &m, NULL) == PR_MDP_ECOMMAND);

    //  0.1 worker
    pr_frame_t w1 [] = { F (""), F ("MDPW01"), F ("\x01"), F ("echo") };
    assert (pr_mdp_parse (w1, 4, &m, NULL) == PR_MDP_OK && m.command == PR_MDP_READY);
    assert (pr_frame_is (m.service, "echo"));
    pr_frame_t w1r [] = { F (""), F ("MDPW01"), F ("\x03"), F ("0123456789abcdef0123456789abcdef"), F (""), F ("r") };
    assert (pr_mdp_parse (w1r, 6, &m, NULL) == PR_MDP_OK && m.command == PR_MDP_FINAL);
    assert (pr_mdp_id_valid (m.address.data, m.address.size) && m.body == 5 && m.nbody == 1);
    pr_frame_t w1h [] = { F (""), F ("MDPW01"), F ("\x04") };
    assert (pr_mdp_parse (w1h, 3, &m, NULL) == PR_MDP_OK && m.command == PR_MDP_HEARTBEAT);
    pr_frame_t w1hx [] = { F (""), F ("MDPW01"), F ("\x04"), F ("junk") };
    assert (pr_mdp_parse (w1hx, 4, &m, NULL) == PR_MDP_ECOMMAND);
    pr_frame_t w1bad [] = { F (""), F ("MDPW01"), F ("\x09") };
    assert (pr_mdp_parse (w1bad, 3, &m, &why) == PR_MDP_ECOMMAND);
    assert (strstr (why, "unknown command"));
    pr_frame_t w1x [] = { F (""), F ("MDPW01"), F ("\x03"), F ("addr"), F ("notempty") };
    assert (pr_mdp_parse (w1x, 5, &m, NULL) == PR_MDP_ECOMMAND);
    pr_frame_t w1s [] = { F (""), F ("MDPW01"), F ("\x01"), F ("bad name") };
    assert (pr_mdp_parse (w1s, 4, &m, NULL) == PR_MDP_ESERVICE);
    assert (pr_mdp_parse (w1, 3, &m, NULL) == PR_MDP_ECOMMAND);

    //  0.2 worker
    pr_frame_t w2 [] = { F ("MDPW02"), F ("\x03"), F ("0123456789abcdef0123456789abcdef"), F (""), F ("p") };
    assert (pr_mdp_parse (w2, 5, &m, NULL) == PR_MDP_OK && m.command == PR_MDP_PARTIAL);
    pr_frame_t w2d [] = { F ("MDPW02"), F ("\x06") };
    assert (pr_mdp_parse (w2d, 2, &m, NULL) == PR_MDP_OK && m.command == PR_MDP_DISCONNECT);

    //  Not MDP at all
    pr_frame_t g [] = { F ("GET / HTTP/1.1"), F ("x") };
    assert (pr_mdp_parse (g, 2, &m, &why) == PR_MDP_EHEADER && m.version == 0);
    pr_frame_t g2 [] = { F ("") };
    assert (pr_mdp_parse (g2, 1, &m, NULL) == PR_MDP_EHEADER);
    pr_frame_t g3 [] = { F (""), F ("MDPX01") };
    assert (pr_mdp_parse (g3, 2, &m, NULL) == PR_MDP_EHEADER);
    assert (pr_mdp_parse (g, 0, &m, NULL) == PR_MDP_EHEADER);

    //  Byte tables are inverses of each other
    for (int v = 1; v <= 2; v++)
        for (int r = PR_MDP_CLIENT; r <= PR_MDP_WORKER; r++)
            for (int c = PR_MDP_REQUEST; c <= PR_MDP_DISCONNECT; c++) {
                int b = pr_mdp_cmd_byte (v, (pr_mdp_role_t) r, (pr_mdp_cmd_t) c);
                if (b >= 0)
                    assert (s_cmd_from_byte (v, (pr_mdp_role_t) r, (uint8_t) b) == (pr_mdp_cmd_t) c);
            }
    assert (strcmp (pr_mdp_header (2, PR_MDP_WORKER), "MDPW02") == 0);
    assert (!pr_mdp_id_valid ((const uint8_t *) "0123456789ABCDEF0123456789abcdef", 32));
    assert (pr_mdp_service_valid ((const uint8_t *) "train.gpu", 9));
    assert (!pr_mdp_service_valid ((const uint8_t *) "a=b", 3));
}
