/*  pr_mdp.h - Majordomo frames (RFC 7/MDP 0.1 and RFC 18/MDP 0.2), checked.

    Works on plain frame arrays (pointer + size) so it needs no socket
    library: the broker, the worker runtime, tests and the fuzz target all
    parse with the same code. Parsing never trusts its input: every frame
    count, header, command byte and service name is checked, and the result
    points into the caller's frames (nothing is copied or allocated).

    Frames are what a ROUTER sees after the identity frame (see PROTOCOL.md):
        0.1 client   "" "MDPC01" service body...
        0.1 worker   "" "MDPW01" cmd ...
        0.2 client   "MDPC02" cmd service body...
        0.2 worker   "MDPW02" cmd ...
*/
#ifndef PR_MDP_H_INCLUDED
#define PR_MDP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PR_MDPC01 "MDPC01"
#define PR_MDPW01 "MDPW01"
#define PR_MDPC02 "MDPC02"
#define PR_MDPW02 "MDPW02"

//  Longest service name we accept (bytes).
#define PR_MDP_SERVICE_MAX 127
//  Job ids: 32 lowercase hex characters.
#define PR_MDP_ID_LEN 32

//  One frame, borrowed.
typedef struct {
    const uint8_t *data;
    size_t size;
} pr_frame_t;

typedef enum {
    PR_MDP_CLIENT = 1,
    PR_MDP_WORKER = 2
} pr_mdp_role_t;

//  Commands, independent of the version's byte values.
typedef enum {
    PR_MDP_REQUEST = 1,     //  client -> broker, or broker -> worker
    PR_MDP_READY,           //  worker -> broker
    PR_MDP_PARTIAL,         //  0.2 only
    PR_MDP_FINAL,           //  0.1 REPLY, 0.2 FINAL (worker -> broker, broker -> client)
    PR_MDP_HEARTBEAT,
    PR_MDP_DISCONNECT
} pr_mdp_cmd_t;

//  Why a message was refused.
typedef enum {
    PR_MDP_OK = 0,
    PR_MDP_EHEADER = -1,    //  not an MDP message: frame count, empty frame, protocol header
    PR_MDP_ECOMMAND = -2,   //  MDP header but unknown command or wrong shape for it
    PR_MDP_ESERVICE = -3    //  service name empty, too long or with bad characters
} pr_mdp_err_t;

//  A parsed message; frames point into the caller's array.
typedef struct {
    int version;            //  1 or 2
    pr_mdp_role_t role;
    pr_mdp_cmd_t command;
    pr_frame_t service;     //  client REQUEST, worker READY; else empty
    pr_frame_t address;     //  worker REQUEST/PARTIAL/FINAL client address; else empty
    size_t body;            //  index of the first body frame in the array
    size_t nbody;           //  number of body frames
} pr_mdp_msg_t;

//  Parses count frames into *msg. Returns PR_MDP_OK, or a negative
//  pr_mdp_err_t with *why (if why is not NULL) set to a static one-line
//  reason. On error *msg holds whatever was recognised (version and role
//  when the header was readable, else 0), so a caller can answer in kind.
int pr_mdp_parse (const pr_frame_t *frames, size_t count, pr_mdp_msg_t *msg, const char **why);

//  Returns the command byte for command in version/role, or -1 when the
//  command does not exist there (e.g. PARTIAL in 0.1, or any client command
//  in 0.1 where there are none).
int pr_mdp_cmd_byte (int version, pr_mdp_role_t role, pr_mdp_cmd_t command);

//  Returns the protocol header string for version/role ("MDPW01", ...).
const char *pr_mdp_header (int version, pr_mdp_role_t role);

//  Returns true when data/size is a valid service name: 1..127 bytes of
//  [A-Za-z0-9._:-].
bool pr_mdp_service_valid (const uint8_t *data, size_t size);

//  Returns true when data/size is a job id: 32 lowercase hex characters.
bool pr_mdp_id_valid (const uint8_t *data, size_t size);

//  Returns true when frame equals the NUL-terminated string s.
bool pr_frame_is (pr_frame_t frame, const char *s);

//  Selftest.
void pr_mdp_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
