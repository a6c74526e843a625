# frozen_string_literal: true

require "ffi"
require_relative "native_library"

module Redilock
  # The C ABI of libredilock (include/redilock.h), attached through the ffi gem. Its
  # constants (statuses, TOKEN_LEN, WAIT_FOREVER, ...) are in constants.rb, generated from the
  # header by scripts/ruby-constants: no number of the header is written anywhere else.
  #
  # Calls that wait on the network are attached with `blocking: true`: the ffi gem releases
  # the GVL around them, so other Ruby threads run meanwhile. The call still runs on the
  # calling thread's own native thread, which is what keeps the thread-local
  # `redilock_last_error()` readable right after it (Ruby threads are native threads; under
  # the opt-in M:N scheduler of Ruby 3.3+ a message could come from another thread's call,
  # while the status stays exact).
  #
  # @api private
  module Native
    extend FFI::Library

    # The library NativeLibrary found. Kept referenced: ffi_lib opens the same file again, and
    # a handle dropped first could unload the library in between.
    LIBRARY = NativeLibrary.open
    ffi_lib LIBRARY.name

    # The largest int64_t, the type of every duration in the C ABI: Ruby's durations saturate
    # at its bounds, and the library refuses what is out of its range.
    INT64_MAX = 2**63 - 1

    # The smallest int64_t (see INT64_MAX).
    INT64_MIN = -2**63

    # The largest int32_t, the type of the replica count.
    INT32_MAX = 2**31 - 1

    # The smallest int32_t (see INT32_MAX).
    INT32_MIN = -2**31

    # The largest size_t, the type of the quorum.
    SIZE_MAX = 2**(8 * FFI.type_size(:size_t)) - 1

    typedef :uint32, :status

    # redilock_lock_params. Initialise with redilock_lock_params_init (it sets struct_size);
    # a test checks these offsets against the C header. The loss callback stays NULL: Ruby
    # code called from a native thread of the library is fragile (with ffi 1.15 it never runs
    # in a forked child, and it races garbage collection and interpreter exit), so a Ruby
    # thread waits for the loss in redilock_renewal_wait instead.
    class LockParams < FFI::Struct
      layout :struct_size, :size_t,
             :cancel, :pointer,
             :auto_renew, :bool,
             :max_hold_ms, :int64,
             :on_lost, :pointer,
             :on_lost_data, :pointer,
             :on_lost_data_drop, :pointer,
             :validity_ms_out, :pointer
    end

    attach_function :redilock_options_new, [:pointer], :status
    attach_function :redilock_options_set_retry_interval_ms, %i[pointer int64], :status
    attach_function :redilock_options_set_connect_timeout_ms, %i[pointer int64], :status
    attach_function :redilock_options_set_command_timeout_ms, %i[pointer int64], :status
    attach_function :redilock_options_set_default_ttl_ms, %i[pointer int64], :status
    attach_function :redilock_options_set_key_prefix, %i[pointer string], :status
    attach_function :redilock_options_set_fair, %i[pointer bool], :status
    attach_function :redilock_options_set_quorum, %i[pointer size_t], :status
    attach_function :redilock_options_set_node_timeout_ms, %i[pointer int64], :status
    attach_function :redilock_options_set_replica_acks, %i[pointer int32 int64], :status
    attach_function :redilock_options_set_tls_ca_file, %i[pointer string], :status
    attach_function :redilock_options_set_tls_client_cert_file, %i[pointer string string], :status
    attach_function :redilock_options_free, [:pointer], :void
    attach_function :redilock_new_with_options, %i[string pointer pointer], :status
    attach_function :redilock_new_quorum, %i[pointer size_t pointer pointer], :status
    attach_function :redilock_lock_params_init, [:pointer], :status
    attach_function :redilock_lock_ex, %i[pointer string int64 int64 pointer pointer size_t pointer], :status,
                    blocking: true
    attach_function :redilock_extend, %i[pointer string string int64], :status, blocking: true
    attach_function :redilock_remaining_ttl, %i[pointer string string pointer], :status, blocking: true
    attach_function :redilock_renewal_lost, %i[pointer string pointer], :status
    attach_function :redilock_renewal_wait, %i[pointer string int64 pointer pointer], :status, blocking: true
    attach_function :redilock_unlock, %i[pointer string string], :status, blocking: true
    attach_function :redilock_ping, [:pointer], :status, blocking: true
    attach_function :redilock_close, [:pointer], :status, blocking: true
    # Like close, free may flush what failed calls left to give back to Redis.
    attach_function :redilock_free, [:pointer], :void, blocking: true
    attach_function :redilock_cancel_new, [:pointer], :status
    attach_function :redilock_cancel_trigger, [:pointer], :void
    attach_function :redilock_cancel_free, [:pointer], :void
    attach_function :redilock_last_error, [], :string
    attach_function :redilock_status_str, [:status], :string
    attach_function :redilock_version, [], :string

    # Runs a native call returning a status and pairs it with the failure message, read at
    # once on the same thread (the message is thread-local and only kept until the next
    # failing call there).
    #
    # @yieldreturn [Integer] the status of the native call the block makes
    # @return [Array(Integer, String), Array(Integer, nil)] the status, and the message
    #   unless it is OK
    def self.status_and_message
      status = yield
      return [status, nil] if status == STATUS_OK

      message = redilock_last_error
      [status, message.empty? ? redilock_status_str(status) : message]
    end
  end
end
