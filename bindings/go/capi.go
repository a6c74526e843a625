package redilock

// Every call into the C library goes through this file; link_static.go or link_system.go say
// which library and which redilock.h.

/*
#include <stdlib.h>
#include <string.h>
#include "redilock.h"

#if REDILOCK_VERSION_MAJOR != 0 || REDILOCK_VERSION_MINOR != 2
#error "redilock.h is not version 0.2: this Go binding is written for the redilock 0.2 ABI (libredilock.so.0.2); build it against a 0.2 header and library"
#endif

// A status and, on failure, a copy of redilock_last_error(). The message is thread-local and
// a goroutine may resume on another OS thread, so it is read in the same C call.
typedef struct {
	redilock_status status;
	char *message;
} go_result;

static go_result go_result_of(redilock_status status) {
	go_result result = {status, NULL};
	if (status != REDILOCK_STATUS_OK) result.message = strdup(redilock_last_error());
	return result;
}

// The options named in set (GO_SET_* bits) are passed on, whatever their value: the library
// checks every one and refuses it with its own message.
enum {
	GO_SET_RETRY_INTERVAL = 1,
	GO_SET_CONNECT_TIMEOUT = 2,
	GO_SET_COMMAND_TIMEOUT = 4,
	GO_SET_DEFAULT_TTL = 8,
	GO_SET_REPLICA_ACKS = 16,
	GO_SET_NODE_TIMEOUT = 32,
};

// The options of New but its texts, which are arguments of their own: Go memory passed to C
// may not hold pointers to Go memory.
typedef struct {
	unsigned set;
	int64_t retry_interval_ms;
	int64_t connect_timeout_ms;
	int64_t command_timeout_ms;
	int64_t default_ttl_ms;
	bool fair;
	int32_t replica_acks;
	int64_t replica_ack_timeout_ms;
	size_t quorum; // 0: a majority
	int64_t node_timeout_ms;
} go_settings;

// quorum false: a client of urls[0] (redilock_new_with_options); true: a quorum client over
// the url_count masters of urls. A NULL key prefix or file keeps the default; the library
// reads the files.
static go_result go_new(const char *const *urls, size_t url_count, bool quorum,
                        const go_settings *settings, const char *key_prefix,
                        const char *tls_ca_file, const char *tls_client_cert_file,
                        const char *tls_client_key_file, redilock **client_out) {
	redilock_options *options = NULL;
	redilock_status status = redilock_options_new(&options);
	if (status == REDILOCK_STATUS_OK && (settings->set & GO_SET_RETRY_INTERVAL))
		status = redilock_options_set_retry_interval_ms(options, settings->retry_interval_ms);
	if (status == REDILOCK_STATUS_OK && (settings->set & GO_SET_CONNECT_TIMEOUT))
		status = redilock_options_set_connect_timeout_ms(options, settings->connect_timeout_ms);
	if (status == REDILOCK_STATUS_OK && (settings->set & GO_SET_COMMAND_TIMEOUT))
		status = redilock_options_set_command_timeout_ms(options, settings->command_timeout_ms);
	if (status == REDILOCK_STATUS_OK && (settings->set & GO_SET_DEFAULT_TTL))
		status = redilock_options_set_default_ttl_ms(options, settings->default_ttl_ms);
	if (status == REDILOCK_STATUS_OK && key_prefix != NULL)
		status = redilock_options_set_key_prefix(options, key_prefix);
	if (status == REDILOCK_STATUS_OK && !settings->fair)
		status = redilock_options_set_fair(options, false);
	if (status == REDILOCK_STATUS_OK && (settings->set & GO_SET_REPLICA_ACKS))
		status = redilock_options_set_replica_acks(options, settings->replica_acks,
		                                           settings->replica_ack_timeout_ms);
	if (status == REDILOCK_STATUS_OK && tls_ca_file != NULL)
		status = redilock_options_set_tls_ca_file(options, tls_ca_file);
	if (status == REDILOCK_STATUS_OK && tls_client_cert_file != NULL)
		status = redilock_options_set_tls_client_cert_file(options, tls_client_cert_file, tls_client_key_file);
	if (status == REDILOCK_STATUS_OK && settings->quorum != 0)
		status = redilock_options_set_quorum(options, settings->quorum);
	if (status == REDILOCK_STATUS_OK && (settings->set & GO_SET_NODE_TIMEOUT))
		status = redilock_options_set_node_timeout_ms(options, settings->node_timeout_ms);
	if (status == REDILOCK_STATUS_OK)
		status = quorum ? redilock_new_quorum(urls, url_count, options, client_out)
		                : redilock_new_with_options(urls[0], options, client_out);
	redilock_options_free(options);
	return go_result_of(status);
}

// Defined in Go (exported below).
extern void goLockLost(uintptr_t renewal);
extern void goLostDataDrop(uintptr_t renewal);

// on_lost_data is the Go renewal's cgo.Handle, a number C passes back untouched.
static void go_lock_lost(void *renewal, const char *name) {
	(void)name;
	goLockLost((uintptr_t)renewal);
}

static void go_lost_data_drop(void *renewal) {
	goLostDataDrop((uintptr_t)renewal);
}

// A NULL cancel makes the wait uncancellable; renewal 0 means no auto-renewal. Whatever the
// outcome, the library drops the renewal's handle through go_lost_data_drop exactly once.
static go_result go_lock(redilock *client, const char *name, int64_t ttl_ms, int64_t timeout_ms,
                         const redilock_cancel *cancel, uintptr_t renewal, int64_t max_hold_ms,
                         char *token_out, uint64_t *fence_out, int64_t *validity_ms_out) {
	redilock_lock_params params;
	redilock_lock_params_init(&params); // fails only for NULL
	params.cancel = cancel;
	params.validity_ms_out = validity_ms_out;
	if (renewal != 0) {
		params.auto_renew = true;
		params.max_hold_ms = max_hold_ms;
		params.on_lost = go_lock_lost;
		params.on_lost_data = (void *)renewal;
		params.on_lost_data_drop = go_lost_data_drop;
	}
	return go_result_of(redilock_lock_ex(client, name, ttl_ms, timeout_ms, &params, token_out,
	                                     REDILOCK_TOKEN_LEN, fence_out));
}

static go_result go_extend(redilock *client, const char *name, const char *token, int64_t ttl_ms) {
	return go_result_of(redilock_extend(client, name, token, ttl_ms));
}

static go_result go_remaining_ttl(redilock *client, const char *name, const char *token,
                                  int64_t *remaining_ms_out) {
	return go_result_of(redilock_remaining_ttl(client, name, token, remaining_ms_out));
}

static go_result go_unlock(redilock *client, const char *name, const char *token) {
	return go_result_of(redilock_unlock(client, name, token));
}

static go_result go_ping(redilock *client) {
	return go_result_of(redilock_ping(client));
}

static go_result go_cancel_new(redilock_cancel **cancel_out) {
	return go_result_of(redilock_cancel_new(cancel_out));
}
*/
import "C"

import (
	"fmt"
	"math"
	"runtime/cgo"
	"sync/atomic"
	"time"
	"unsafe"
)

// Status is a status code of the C library. The numbers are stable: 1xx caller errors, 2xx
// expected outcomes, 3xx problems in the environment, 9xx internal errors.
type Status uint32

const (
	// StatusOK is success; an Error never carries it.
	StatusOK Status = C.REDILOCK_STATUS_OK
	// StatusInvalidArgument: an argument is unusable (empty name, bad URL, negative TTL…).
	StatusInvalidArgument Status = C.REDILOCK_STATUS_INVALID_ARGUMENT
	// StatusNullArgument: a required pointer was NULL; the Go API never causes it.
	StatusNullArgument Status = C.REDILOCK_STATUS_NULL_ARGUMENT
	// StatusWrongProcess: the client was created in another process.
	StatusWrongProcess Status = C.REDILOCK_STATUS_WRONG_PROCESS
	// StatusNotAcquired: another owner holds the lock and the wait ended. Matches ErrNotAcquired.
	StatusNotAcquired Status = C.REDILOCK_STATUS_NOT_ACQUIRED
	// StatusNotOwner: the token does not hold the lock. Matches ErrNotOwner.
	StatusNotOwner Status = C.REDILOCK_STATUS_NOT_OWNER
	// StatusCancelled: the wait was cancelled through its context.
	StatusCancelled Status = C.REDILOCK_STATUS_CANCELLED
	// StatusClosed: the client was closed before or during the call. Matches ErrClosed.
	StatusClosed Status = C.REDILOCK_STATUS_CLOSED
	// StatusConnection: Redis is unreachable or a reply timed out. Matches ErrConnection.
	StatusConnection Status = C.REDILOCK_STATUS_CONNECTION
	// StatusRedis: Redis replied with an error (NOAUTH, WRONGTYPE…). Matches ErrRedis.
	StatusRedis Status = C.REDILOCK_STATUS_REDIS
	// StatusTLS: the TLS handshake with Redis failed, or a certificate was refused. Matches ErrTLS.
	StatusTLS Status = C.REDILOCK_STATUS_TLS
	// StatusNotReplicated: too few replicas acknowledged the lock in time; it was released.
	// Matches ErrNotReplicated.
	StatusNotReplicated Status = C.REDILOCK_STATUS_NOT_REPLICATED
	// StatusQuorumUnavailable: a quorum client (NewQuorum) heard from too few masters in time
	// to know whether the lock is free. Matches ErrQuorumUnavailable.
	StatusQuorumUnavailable Status = C.REDILOCK_STATUS_QUORUM_UNAVAILABLE
	// StatusPanic: the library caught an internal bug; the client may be unusable.
	StatusPanic Status = C.REDILOCK_STATUS_PANIC
)

// ReplicaAcksAuto is the count of WithReplicaAcks that asks the server (its role) how many
// replicas it has: one replica must acknowledge each lock write when the server is a primary
// with replicas connected, none otherwise. It is the default.
const ReplicaAcksAuto = C.REDILOCK_REPLICA_ACKS_AUTO

// String is the library's description of the status.
func (s Status) String() string {
	return C.GoString(C.redilock_status_str(C.redilock_status(s)))
}

// Version is the version of the linked C library ("MAJOR.MINOR.PATCH").
func Version() string {
	return C.GoString(C.redilock_version())
}

// tokenBuffer receives an owner token from C: 32 characters and a NUL.
type tokenBuffer [C.REDILOCK_TOKEN_LEN]byte

func (t *tokenBuffer) cString() *C.char {
	return (*C.char)(unsafe.Pointer(&t[0]))
}

// clientHandle and cancelHandle are owned C objects; the types let the rest of the package
// hold them without cgo.
type (
	clientHandle = *C.redilock
	cancelHandle = *C.redilock_cancel
)

const (
	waitForever = int64(C.REDILOCK_WAIT_FOREVER)
	noWait      = int64(C.REDILOCK_NO_WAIT)
	noExpiry    = int64(C.REDILOCK_NO_EXPIRY) // what remainingTTLCall reports for a key without expiry
)

// failure turns a shim's result into an *Error (nil on success), freeing the copied message.
func failure(result C.go_result) *Error {
	if result.status == C.REDILOCK_STATUS_OK {
		return nil
	}
	message := C.GoString(result.message)
	C.free(unsafe.Pointer(result.message))
	return &Error{Status: Status(result.status), Message: message}
}

// cString points C at a NUL-terminated Go byte slice, or is NULL for nil; cgo keeps the
// slice in place during the call.
func cString(text []byte) *C.char {
	if text == nil {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&text[0]))
}

// newClientHandle creates a client of urls[0], or with quorum a quorum client over urls. The
// options that were given are passed on as they are; the library refuses an invalid one.
func newClientHandle(urls []string, quorum bool, cfg *config, texts *configTexts) (clientHandle, *Error) {
	if cfg.quorum < 0 { // size_t would wrap it around to a huge count
		return nil, invalidArgument("the quorum must not be negative, not %d", cfg.quorum)
	}
	// C takes an array of pointers, which Go memory passed to C may hold only to C memory. Its
	// capacity of at least one keeps the array pointer non-NULL for an empty list, which the
	// library then refuses for its count.
	cURLs := make([]*C.char, len(urls), max(len(urls), 1))
	for i, url := range urls {
		what := "the URL"
		if quorum {
			what = fmt.Sprintf("master URL %d", i+1)
		}
		cURL, err := nulTerminated(what, url)
		if err != nil {
			return nil, err
		}
		cURLs[i] = (*C.char)(C.CBytes(cURL))
		defer C.free(unsafe.Pointer(cURLs[i]))
	}
	settings := C.go_settings{
		retry_interval_ms:  C.int64_t(millis(cfg.retryInterval.value)),
		connect_timeout_ms: C.int64_t(millis(cfg.connectTimeout.value)),
		command_timeout_ms: C.int64_t(millis(cfg.commandTimeout.value)),
		default_ttl_ms:     C.int64_t(millis(cfg.defaultTTL.value)),
		fair:               C.bool(!cfg.notFair),
		// A count beyond int32_t stays beyond what any server has (or below what the library
		// takes) instead of wrapping around to another count.
		replica_acks:           C.int32_t(min(max(cfg.replicaAcks.count, math.MinInt32), math.MaxInt32)),
		replica_ack_timeout_ms: C.int64_t(millis(cfg.replicaAcks.timeout)),
		quorum:                 C.size_t(cfg.quorum),
		node_timeout_ms:        C.int64_t(millis(cfg.nodeTimeout.value)),
	}
	for _, option := range []struct {
		given bool
		bit   C.uint
	}{
		{cfg.retryInterval.given, C.GO_SET_RETRY_INTERVAL},
		{cfg.connectTimeout.given, C.GO_SET_CONNECT_TIMEOUT},
		{cfg.commandTimeout.given, C.GO_SET_COMMAND_TIMEOUT},
		{cfg.defaultTTL.given, C.GO_SET_DEFAULT_TTL},
		{cfg.replicaAcks.given, C.GO_SET_REPLICA_ACKS},
		{cfg.nodeTimeout.given, C.GO_SET_NODE_TIMEOUT},
	} {
		if option.given {
			settings.set |= option.bit
		}
	}
	var handle clientHandle
	err := failure(C.go_new(unsafe.SliceData(cURLs), C.size_t(len(urls)), C.bool(quorum), &settings,
		cString(texts.keyPrefix), cString(texts.tlsCAFile), cString(texts.tlsClientCert),
		cString(texts.tlsClientKey), &handle))
	return handle, err
}

// closeClientHandle ends the waits and renewals on the client; the handle stays valid.
func closeClientHandle(handle clientHandle) {
	C.redilock_close(handle)
}

func freeClientHandle(handle clientHandle) {
	C.redilock_free(handle)
}

// renewalHandles counts the renewals the library holds a handle to, for the tests to check
// that each one is given back.
var renewalHandles atomic.Int64

// lockCall writes the token, the fencing number and the validity of the lock it takes. With a
// renewal, the lock is auto-renewed and a loss is reported to r.lockLost.
func lockCall(handle clientHandle, name []byte, ttl time.Duration, timeoutMs int64, cancel cancelHandle,
	r *renewal, maxHold time.Duration, token *tokenBuffer, fence *uint64, validity *time.Duration) *Error {
	var renewalHandle cgo.Handle // 0: none
	if r != nil {
		renewalHandles.Add(1)
		renewalHandle = cgo.NewHandle(r)
	}
	var validityMs C.int64_t
	failed := failure(C.go_lock(handle, cString(name), C.int64_t(millis(ttl)), C.int64_t(timeoutMs),
		cancel, C.uintptr_t(renewalHandle), C.int64_t(millis(maxHold)),
		token.cString(), (*C.uint64_t)(unsafe.Pointer(fence)), &validityMs))
	*validity = durationOfMillis(int64(validityMs))
	return failed
}

// goLockLost is the loss callback, called at most once per renewal on a thread of the
// library's own.
//
//export goLockLost
func goLockLost(data C.uintptr_t) {
	cgo.Handle(data).Value().(*renewal).lockLost()
}

// goLostDataDrop is on_lost_data_drop: the library is done with the renewal's handle. Called
// exactly once, after the loss callback returned or once it can no longer run.
//
//export goLostDataDrop
func goLostDataDrop(data C.uintptr_t) {
	cgo.Handle(data).Delete()
	renewalHandles.Add(-1)
}

func extendCall(handle clientHandle, name []byte, token *tokenBuffer, ttl time.Duration) *Error {
	return failure(C.go_extend(handle, cString(name), token.cString(), C.int64_t(millis(ttl))))
}

// remainingTTLCall reports the remaining TTL in milliseconds; noExpiry for a key without one.
func remainingTTLCall(handle clientHandle, name []byte, token *tokenBuffer) (int64, *Error) {
	var remaining C.int64_t
	err := failure(C.go_remaining_ttl(handle, cString(name), token.cString(), &remaining))
	return int64(remaining), err
}

func unlockCall(handle clientHandle, name []byte, token *tokenBuffer) *Error {
	return failure(C.go_unlock(handle, cString(name), token.cString()))
}

func pingCall(handle clientHandle) *Error {
	return failure(C.go_ping(handle))
}

func newCancelHandle() (cancelHandle, *Error) {
	var handle cancelHandle
	err := failure(C.go_cancel_new(&handle))
	return handle, err
}

func triggerCancelHandle(handle cancelHandle) {
	C.redilock_cancel_trigger(handle)
}

func freeCancelHandle(handle cancelHandle) {
	C.redilock_cancel_free(handle)
}
