/* agent: the host side of the guest agent protocol (docs/agent-protocol.md), version 1. */
#ifndef KVMINI_AGENT_H
#define KVMINI_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/vmerr.h"

#define AGENT_PORT	  1024
#define AGENT_VERSION	  1
#define AGENT_HDR_LEN	  8
#define AGENT_MAX_PAYLOAD 65536
#define AGENT_MAX_ARGS	  4096 /* argc and envc limits */
#define AGENT_MAX_ERROR	  1024 /* bytes of an ERROR message */

enum agent_type {
	AGENT_HELLO = 1,
	AGENT_EXEC = 2,
	AGENT_STARTED = 3,
	AGENT_DATA = 4,
	AGENT_SIGNAL = 5,
	AGENT_WINCH = 6,
	AGENT_EXIT = 7,
	AGENT_ERROR = 8,
	AGENT_CP_OUT = 9,
	AGENT_CP_IN = 10,
	AGENT_PING = 11,
};

/* EXEC flags. */
#define AGENT_EXEC_PTY	 1
#define AGENT_EXEC_STDIN 2
#define AGENT_EXEC_UID	 4
#define AGENT_EXEC_GID	 8

/* One message as parsed: `payload` points into the reader's buffer until the next call. */
struct agent_msg {
	uint8_t type, stream;
	uint32_t len;
	const uint8_t *payload;
};

/* Splits a byte stream into messages; holds at most one message (AGENT_MAX_PAYLOAD). */
struct agent_reader {
	uint8_t hdr[AGENT_HDR_LEN];
	uint32_t hdr_have, body_have, body_len;
	uint8_t body[AGENT_MAX_PAYLOAD];
};

void agent_reader_init(struct agent_reader *r);

/*
 * Take bytes from *p (*len of them), advancing both, until one message is complete: 1 with `m`
 * filled (checked only for framing: len <= AGENT_MAX_PAYLOAD, type known, stream <= 2,
 * reserved 0), 0 when all bytes are consumed and the message is not complete, -EPROTO when the
 * framing is broken (the stream cannot be resynchronised).
 */
int agent_reader_next(struct agent_reader *r, const uint8_t **p, size_t *len, struct agent_msg *m);

/*
 * Is `m` a message the agent may send the host, with the payload its type requires (HELLO 8
 * bytes, STARTED 4, EXIT 8 with kind 0 and value <= 255 or kind 1 and value 1..64, ERROR a
 * status of 125..127 and at most AGENT_MAX_ERROR bytes, DATA on stream 1 or 2)? 0 or -EPROTO.
 */
int agent_check_from_guest(const struct agent_msg *m);

/* A command to run (EXEC). */
struct agent_exec_req {
	const char *const *argv; /* NULL-terminated, at least argv[0] */
	const char *const *env;	 /* NULL-terminated K=V strings, or NULL */
	const char *cwd;	 /* or NULL: "/" */
	uint32_t flags;		 /* AGENT_EXEC_* */
	uint32_t uid, gid;
	uint16_t rows, cols;
};

/*
 * Encode the EXEC payload of `req` into buf[0..cap): its length, or -E2BIG when it does not fit
 * (or more than AGENT_MAX_ARGS strings), -EINVAL without argv[0].
 */
int agent_encode_exec(uint8_t *buf, size_t cap, const struct agent_exec_req *req);

/* Where a command's streams go, and what may interrupt it. */
struct agent_io {
	int in_fd;	      /* stdin source, or -1 (the command gets /dev/null) */
	int out_fd;	      /* stdout (and the pty's output), or -1: discarded */
	int err_fd;	      /* stderr, or -1: discarded */
	int sig_fd;	      /* or -1: each byte read from it is a signal number to forward */
	int winsize_fd;	      /* or -1: a terminal; a SIGWINCH byte on sig_fd sends its size
			       * (TIOCGWINSZ) as WINCH instead of forwarding the signal */
	int abort_fd;	      /* or -1: readable = give up (the VM stopped) */
	int timeout_ms;	      /* the command's run time limit, 0: none */
	int hello_timeout_ms; /* the agent must say HELLO within this, 0: no limit */
};

enum agent_outcome {
	AGENT_EXITED,	/* value: the exit code */
	AGENT_SIGNALED, /* value: the signal number */
	AGENT_REFUSED,	/* value: 125, 126 or 127 from the agent's ERROR; msg: its text */
	AGENT_TIMEOUT,	/* the time limit passed (the caller ends the VM) */
	AGENT_ABORTED,	/* abort_fd became readable */
};

struct agent_result {
	enum agent_outcome outcome;
	int value;
	char msg[AGENT_MAX_ERROR + 1];
};

/*
 * Speak the protocol on the connected stream socket `sock` (owned by the caller): HELLO both
 * ways, EXEC, then relay stdin, stdout and stderr and forward signals until EXIT. Output is
 * written to out_fd/err_fd with blocking writes (a slow reader slows the guest, nothing piles up
 * here); stdin is read only while the socket takes what was read before, so a command that
 * never reads its stdin blocks nobody. 0 with `res` filled; -EPROTO (the agent broke the
 * protocol or closed without an exit status), -ETIMEDOUT (no HELLO within hello_timeout_ms),
 * -EIO (the socket failed), with `e` set.
 */
int agent_exec(int sock, const struct agent_exec_req *req, const struct agent_io *io,
	       struct agent_result *res, struct vmerr *e);

/*
 * Copy a tar stream: `in` (CP_IN) sends what io->in_fd gives until EOF for the agent to
 * extract into guest directory `path`; otherwise (CP_OUT) the agent archives guest `path` and
 * the stream goes to io->out_fd. A success is EXIT (0, 0) in `res`, a refusal ERROR 125 with
 * the agent's reason. Returns as agent_exec().
 */
int agent_copy(int sock, bool in, const char *path, const struct agent_io *io,
	       struct agent_result *res, struct vmerr *e);

/* The status a command-line tool exits with for `res`: the code, 128+signal, 125..127, 124 on
 * timeout, 125 when aborted. */
int agent_status(const struct agent_result *res);

#endif
