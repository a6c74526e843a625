# frozen_string_literal: true

module Redilock
  # A client of one Redis deployment (a server, a primary behind Sentinels, a Redis Cluster),
  # or a quorum client over several independent masters: its connections and one I/O thread
  # live in the native library, shared by every Ruby thread that uses it. Create one per
  # process (after `fork`, create a new one in the child) and share it between threads. The
  # native client is freed when the Client is garbage collected; {#close} ends its use earlier.
  #
  # Durations are seconds as Numeric (Integer, Float or Rational), like `Mutex#sleep` and
  # `Timeout.timeout`; they are rounded up to whole milliseconds (a positive duration never
  # becomes 0). The native library checks their range: a negative, zero or too large duration
  # raises ArgumentError with its message.
  #
  # @example
  #   client = Redilock::Client.new(ENV.fetch("REDIS_URL"), ttl: 30)
  #   client.synchronize("orders:42", timeout: 2) { ship(order) }
  #   client.close
  class Client
    DURATION_SETTERS = {
      ttl: :redilock_options_set_default_ttl_ms,
      retry_interval: :redilock_options_set_retry_interval_ms,
      connect_timeout: :redilock_options_set_connect_timeout_ms,
      command_timeout: :redilock_options_set_command_timeout_ms,
      node_timeout: :redilock_options_set_node_timeout_ms
    }.freeze
    private_constant :DURATION_SETTERS

    # The durations whose 0 the library reads as "the default", which Ruby spells nil: 0 is
    # refused for them, with what nil means.
    NIL_MEANS = {
      ttl: "nil: every lock call passes its ttl:",
      node_timeout: "nil: a tenth of each call's TTL, at least 50 ms"
    }.freeze
    private_constant :NIL_MEANS

    # Frees a client handle once the Client is garbage, and only in the process that created
    # it: a forked child inherits the parent's handle (and its finalizer) and must leave it to
    # the parent. Every call passes the handle along, so it is not garbage while one runs.
    HandleFree = Struct.new(:owner_pid) do
      # @param pointer [FFI::Pointer] the client handle, freed unless this is a forked child
      # @return [void]
      def call(pointer)
        Native.redilock_free(pointer) if Process.pid == owner_pid
      end
    end
    private_constant :HandleFree

    # What an auto-renewed acquisition asks for on top of a plain one.
    Renewal = Struct.new(:max_hold_ms, :on_lost)
    private_constant :Renewal

    # One acquisition: its arguments and the buffers redilock_lock_ex writes results to. The
    # params hold only the address of `validity`: the Attempt keeps its memory alive.
    Attempt = Struct.new(:c_name, :ttl_ms, :params, :token, :fence, :validity) do
      # @param handle [FFI::AutoPointer] the client
      # @param timeout_ms [Integer] how long this call may wait
      # @return [Array(Integer, String), Array(Integer, nil)] see Native.status_and_message
      def call(handle, timeout_ms)
        Native.status_and_message do
          Native.redilock_lock_ex(handle, c_name, ttl_ms, timeout_ms, params, token, Native::TOKEN_LEN, fence)
        end
      end
    end
    private_constant :Attempt

    # Creates a client. No I/O happens here: it connects on first use (see {#ping}) and
    # reconnects by itself after Redis comes back.
    #
    # Given an Array of URLs, it is a quorum client ("Redlock") over those independent masters
    # (at least 3, each a separate server): a lock is held when a quorum of them (a majority
    # by default) granted it with time left of its TTL ({Lock#validity}); extend and
    # auto-renewal need a quorum too. Fences strictly increase across holders as long as no
    # master loses its data (run them with persistence). Waiters are woken by a release on
    # any master, but take no turns: a quorum client always barges (`fair:` does not apply).
    #
    # @param url [String, Array<String>] `redis://[user:password@]host[:port][/db]`, the same
    #   with `rediss://` for TLS (a trailing `#insecure` skips verifying the server: tests
    #   only), `unix:///path/to/redis.sock`,
    #   `redis+sentinel://host[:port],host[:port]/PRIMARY_NAME[/db]` (the primary Sentinel
    #   names, followed across failovers) or `redis+cluster://host:port,host:port` (a Redis
    #   Cluster), the last two also with `rediss+`; or an Array of `redis://`, `rediss://` or
    #   `unix://` URLs, the masters of a quorum client
    # @param quorum [Integer, nil] quorum clients: how many masters must grant a lock, an
    #   extension or a renewal, more than half of them and at most all; nil: a majority
    # @param node_timeout [Numeric, nil] quorum clients: seconds one master may take to answer
    #   one call before it counts as failed for that call (keep it small against the TTL);
    #   nil: a tenth of the call's TTL, at least 50 ms, at most the command timeout
    # @param ttl [Numeric, nil] TTL in seconds for lock calls that pass none; nil: every call
    #   must pass `ttl:`
    # @param retry_interval [Numeric, nil] a safety net: how often a waiter looks at the lock
    #   when nothing wakes it (library default 10 s). Waiters do not poll: an unlock hands the
    #   lock to the first in line, who also looks as soon as the holder's TTL runs out.
    # @param connect_timeout [Numeric, nil] how long connecting may take (default 2 s)
    # @param command_timeout [Numeric, nil] how long one Redis reply may take (default 2 s)
    # @param key_prefix [String, nil] put in front of every lock name to form its Redis key
    # @param fair [Boolean] true (the default): waiters take turns in arrival order; false:
    #   this client's calls take a free lock whoever waits, and its waiters are only woken to
    #   try again (more throughput for short critical sections, no bound on how long a waiter
    #   may be passed over)
    # @param replica_acks [Integer, :auto] how many replicas must acknowledge each lock write
    #   (an acquisition, an extend, a renewal), with Redis's `WAIT` in the same round trip, so
    #   that a failover does not lose a lock handed out. `:auto` (the default): one when the
    #   server is a primary with replicas connected, none otherwise; 0: off. A lock too few
    #   acknowledged is released and the call raises {NotReplicated}.
    # @param replica_ack_timeout [Numeric, nil] seconds `WAIT` waits for them; nil: half the
    #   command timeout. It must be shorter than the command timeout.
    # @param tls_ca_file [String, Pathname, nil] `rediss://`: the PEM file of the certificate
    #   authorities that verify the server's certificate, instead of the system's roots
    # @param tls_client_cert [String, Pathname, nil] `rediss://`: a certificate (PEM, chain
    #   allowed) to present to a server that asks for one (mutual TLS); with `tls_client_key:`
    # @param tls_client_key [String, Pathname, nil] the private key (PEM) of `tls_client_cert:`
    # @raise [ArgumentError] for an unusable URL (its message shows the URL with the password
    #   masked, `user:***@`) or option, or a TLS file the library cannot use (its message
    #   names the file); certificate files need a `rediss://` URL. For a quorum client also:
    #   fewer than 3 URLs, a URL that is not one server, the same server twice, or a quorum
    #   not more than half of the masters (or more than all); `quorum:` and `node_timeout:`
    #   need an Array of URLs
    # @see https://github.com/redilock/redilock/blob/main/docs/operations.md#sentinel
    #   Sentinel: finding the primary, following failovers
    # @see https://github.com/redilock/redilock/blob/main/docs/operations.md#redis-cluster
    #   Redis Cluster: where locks live, redirections, wake-ups
    def initialize(url, quorum: nil, node_timeout: nil, ttl: nil, retry_interval: nil, connect_timeout: nil,
                   command_timeout: nil, key_prefix: nil, fair: true, replica_acks: :auto, replica_ack_timeout: nil,
                   tls_ca_file: nil, tls_client_cert: nil, tls_client_key: nil)
      @closed = false
      c_urls = url.is_a?(Array) ? url.each_with_index.map { |one, at| c_string(one, "urls[#{at}]") } : nil
      c_url = c_string(url, "url") unless c_urls
      raise ArgumentError, "fair must be true or false, not #{fair.inspect}" unless [true, false].include?(fair)
      if !c_urls && (quorum || node_timeout)
        raise ArgumentError, "quorum: and node_timeout: are for quorum clients: give an Array of URLs"
      end

      settings = duration_settings(ttl: ttl, retry_interval: retry_interval, connect_timeout: connect_timeout,
                                   command_timeout: command_timeout, node_timeout: node_timeout)
      settings << quorum_setting(quorum) if quorum
      settings << [:redilock_options_set_key_prefix, c_string(key_prefix, "key_prefix")] if key_prefix
      settings << [:redilock_options_set_fair, false] unless fair
      settings << replica_acks_setting(replica_acks, replica_ack_timeout)
      settings.concat(tls_settings(tls_ca_file, tls_client_cert, tls_client_key))
      @handle = open_handle(settings) do |options, out|
        c_urls ? new_quorum(c_urls, options, out) : Native.redilock_new_with_options(c_url, options, out)
      end
    end

    # Holds the lock `name` while the block runs, like `Mutex#synchronize`, and always
    # unlocks it. Interrupts (Thread#raise, Thread#kill, Timeout) never leave the lock taken.
    #
    # The lock is auto-renewed by default, so a block may run longer than the TTL: the TTL
    # then only bounds how long the lock outlives a holder that died. If the lock is lost
    # anyway (see {Lock#lost?}), the block is not interrupted (Ruby cannot stop it safely
    # midway); check `lock.lost?` in long blocks, and expect {LockLost} when the block ends.
    #
    # @param name [String, Symbol] the lock's name (any UTF-8 text without NUL)
    # @param ttl [Numeric, nil] seconds after which Redis drops the lock if it is not
    #   unlocked (or renewed); nil: the client's default
    # @param timeout [Numeric, nil] at most this many seconds to wait; nil waits until
    #   acquired, 0 tries once
    # @param auto_renew [Boolean] renew the lock at about a third of its TTL until it is
    #   unlocked
    # @param max_hold [Numeric, nil] with auto_renew: stop renewing after this many seconds
    #   held (the lock then runs out at its TTL and counts as lost); nil: no limit
    # @param on_lost [#call, nil] with auto_renew: called with the {Lock} once if it is lost
    #   while held (or the client closed before {Lock#unlock}), on a Ruby thread of its own
    #   that waits for the loss while the lock is held (see {Lock#lost?})
    # @yieldparam lock [Lock] the lock held
    # @return [Object] the block's value
    # @raise [NotAcquired] when the timeout passed first
    # @raise [LockLost] when the block finished but the auto-renewed lock was lost meanwhile
    # @raise [NotOwner] when the block finished but the lock (not auto-renewed) had expired
    #   meanwhile. When the block raised, its exception is the one raised.
    def synchronize(name, ttl: nil, timeout: nil, auto_renew: true, max_hold: nil, on_lost: nil)
      raise ArgumentError, "synchronize needs a block" unless block_given?

      renewal = renewal_settings(auto_renew, max_hold, on_lost)
      lock = nil
      block_raised = false
      begin
        # Interrupts are held back until `lock` is assigned, so the ensure sees every lock taken.
        Thread.handle_interrupt(Object => :never) { lock = acquire(name, ttl, timeout, renewal) }
        yield lock
      rescue Exception # noted, then re-raised as is
        block_raised = true
        raise
      ensure
        unlock_after_block(lock, block_raised) if lock
      end
    end

    # Acquires the lock `name`, waiting while another owner holds it.
    #
    # @param (see #synchronize)
    # @param auto_renew [Boolean] renew the lock in the background until {Lock#unlock}; an
    #   auto-renewed lock that is never unlocked stays held until `max_hold` or {#close}
    # @return [Lock] the lock, to give back with {Lock#unlock}
    # @raise [NotAcquired] when the timeout passed first
    def lock(name, ttl: nil, timeout: nil, auto_renew: false, max_hold: nil, on_lost: nil)
      acquire(name, ttl, timeout, renewal_settings(auto_renew, max_hold, on_lost))
    end

    # Acquires the lock `name` if it is free, without waiting.
    #
    # @param (see #lock)
    # @return [Lock, nil] the lock, or nil when another owner holds it
    def try_lock(name, ttl: nil, auto_renew: false, max_hold: nil, on_lost: nil)
      acquire(name, ttl, 0, renewal_settings(auto_renew, max_hold, on_lost))
    rescue NotAcquired
      nil
    end

    # Checks that Redis answers, connecting first if needed.
    #
    # @return [true]
    # @raise [ConnectionError] when Redis cannot be reached
    def ping
      raise_unless_ok(*Native.status_and_message { Native.redilock_ping(@handle) })
      true
    end

    # Closes the client. Idempotent and thread-safe. Waits in progress end with
    # {ClientClosed} (a lock an attempt in flight took is given back), and calls made
    # afterwards raise it without sending anything. Locks still held are not unlocked: their
    # TTL ends them. Auto-renewed ones stop being renewed and count as lost: their `on_lost:`
    # callbacks are called. The native memory is freed when the Client is garbage collected.
    # In a forked child it only marks this object closed: the client is the parent's.
    #
    # @return [nil]
    def close
      status, message = Native.status_and_message { Native.redilock_close(@handle) }
      @closed = true
      raise_unless_ok(status, message) unless status == Native::STATUS_WRONG_PROCESS
      nil
    end

    # @return [Boolean] whether {#close} was called
    def closed?
      @closed
    end

    # Unlocks a lock by name and token (redilock_unlock); {Lock#unlock} is the public way.
    #
    # @return [true]
    # @raise [NotOwner] when the token no longer holds the lock
    # @api private
    def unlock(c_name, token)
      raise_unless_ok(*Native.status_and_message { Native.redilock_unlock(@handle, c_name, token) })
      true
    end

    # Resets a held lock's TTL (redilock_extend); {Lock#extend} is the public way.
    #
    # @return [true]
    # @api private
    def extend_lock(c_name, token, ttl)
      ttl_ms = milliseconds(ttl, "ttl")
      raise_unless_ok(*Native.status_and_message { Native.redilock_extend(@handle, c_name, token, ttl_ms) })
      true
    end

    # The remaining TTL of a held lock (redilock_remaining_ttl); {Lock#remaining_ttl} is the
    # public way.
    #
    # @return [Float, nil] seconds; nil for a key without expiry
    # @api private
    def remaining_ttl(c_name, token)
      remaining = FFI::MemoryPointer.new(:int64)
      raise_unless_ok(*Native.status_and_message { Native.redilock_remaining_ttl(@handle, c_name, token, remaining) })
      ms = remaining.read_int64
      ms == Native::NO_EXPIRY ? nil : ms / 1000.0
    end

    # Whether the auto-renewal of a lock lost it (redilock_renewal_lost); {Lock#lost?} is the
    # public way.
    #
    # @return [Boolean, nil] nil when the token has no renewal any more (it was unlocked)
    # @api private
    def renewal_lost?(token)
      lost = FFI::MemoryPointer.new(:bool)
      status, message = Native.status_and_message { Native.redilock_renewal_lost(@handle, token, lost) }
      case status
      when Native::STATUS_OK then lost.read(:bool)
      when Native::STATUS_CLOSED then true # closing counts the leases still renewed as lost
      when Native::STATUS_INVALID_ARGUMENT then nil
      else raise Redilock.error_for(status, message)
      end
    end

    private

    # settings: [setter, *arguments] for each option, the setter a redilock_options_set_*
    # function of Native, called in order on the options of the new client. The block creates
    # the client from them: given the options and the pointer to write the handle to, it
    # returns the constructor's status.
    def open_handle(settings)
      out = FFI::MemoryPointer.new(:pointer)
      raise_unless_ok(*Native.status_and_message { Native.redilock_options_new(out) })
      options = out.read_pointer
      begin
        settings.each do |setter, *arguments|
          raise_unless_ok(*Native.status_and_message { Native.public_send(setter, options, *arguments) })
        end
        raise_unless_ok(*Native.status_and_message { yield options, out })
      ensure
        Native.redilock_options_free(options)
      end
      FFI::AutoPointer.new(out.read_pointer, HandleFree.new(Process.pid))
    end

    # redilock_new_quorum over a C array of the URLs' char pointers. The MemoryPointers of the
    # strings are locals of this frame, so they stay alive until the call has returned; the
    # library keeps none of them.
    def new_quorum(c_urls, options, out)
      strings = c_urls.map { |c_url| FFI::MemoryPointer.from_string(c_url) }
      # One slot at least: an empty array is for the library to refuse, not a NULL pointer.
      array = FFI::MemoryPointer.new(:pointer, [strings.size, 1].max)
      array.write_array_of_pointer(strings)
      Native.redilock_new_quorum(array, strings.size, options, out)
    end

    # The settings of the durations given (not nil), in milliseconds.
    def duration_settings(durations)
      durations.compact.map do |option, seconds|
        ms = if NIL_MEANS.key?(option)
               nonzero_milliseconds(seconds, option, NIL_MEANS[option])
             else
               milliseconds(seconds, option)
             end
        [DURATION_SETTERS.fetch(option), ms]
      end
    end

    # The library takes a size_t, where 0 means "a majority", which Ruby spells nil. A count
    # beyond size_t stays beyond any number of masters (refused by the library) instead of
    # raising RangeError.
    def quorum_setting(quorum)
      unless quorum.is_a?(Integer) && quorum.positive?
        raise ArgumentError, "quorum must be a positive Integer (nil: a majority), not #{quorum.inspect}"
      end

      [:redilock_options_set_quorum, [quorum, Native::SIZE_MAX].min]
    end

    # The library's count: REPLICA_ACKS_AUTO, or the Integer, kept within int32_t so that a
    # count beyond it stays beyond what any server has instead of raising RangeError.
    def replica_acks_setting(count, timeout)
      count = case count
              when :auto then Native::REPLICA_ACKS_AUTO
              when Integer then count.clamp(Native::INT32_MIN, Native::INT32_MAX)
              else raise ArgumentError, "replica_acks must be an Integer or :auto, not #{count.inspect}"
              end
      timeout_ms =
        timeout.nil? ? 0 : nonzero_milliseconds(timeout, "replica_ack_timeout", "nil: half the command timeout")
      [:redilock_options_set_replica_acks, count, timeout_ms]
    end

    # The library takes a certificate without its key as a NULL key (refused) and a key
    # without its certificate as none at all: both are mistakes, said here in Ruby's terms.
    def tls_settings(ca_file, client_cert, client_key)
      if client_cert.nil? != client_key.nil?
        raise ArgumentError, "tls_client_cert: and tls_client_key: go together: give both or neither"
      end

      settings = []
      settings << [:redilock_options_set_tls_ca_file, c_path(ca_file, "tls_ca_file")] if ca_file
      if client_cert
        settings << [:redilock_options_set_tls_client_cert_file, c_path(client_cert, "tls_client_cert"),
                     c_path(client_key, "tls_client_key")]
      end
      settings
    end

    # nil for a plain lock, which starts no renewal.
    def renewal_settings(auto_renew, max_hold, on_lost)
      unless auto_renew
        raise ArgumentError, "max_hold: and on_lost: need auto_renew: true" if max_hold || on_lost

        return nil
      end
      if on_lost && !on_lost.respond_to?(:call)
        raise ArgumentError, "on_lost must respond to call, not be #{on_lost.class}"
      end

      Renewal.new(max_hold.nil? ? 0 : nonzero_milliseconds(max_hold, "max_hold", "nil: no limit"), on_lost)
    end

    def acquire(name, ttl, timeout, renewal)
      c_name = c_string(name, "name")
      ttl_ms = ttl.nil? ? 0 : nonzero_milliseconds(ttl, "ttl", "nil: the client's ttl:")
      timeout_ms = timeout_milliseconds(timeout)
      validity = FFI::MemoryPointer.new(:int64)
      attempt = Attempt.new(c_name, ttl_ms, lock_params(renewal, validity),
                            FFI::MemoryPointer.new(:char, Native::TOKEN_LEN), FFI::MemoryPointer.new(:uint64), validity)
      asked_at = Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond)
      # Trying once first keeps the helper thread of #wait_for off the uncontended path. A
      # negative timeout is passed as it is, for the library to refuse.
      first_try = timeout_ms == Native::WAIT_FOREVER ? Native::NO_WAIT : [timeout_ms, Native::NO_WAIT].min
      status, message = attempt.call(@handle, first_try)
      if status == Native::STATUS_NOT_ACQUIRED && timeout_ms != Native::NO_WAIT
        status, message = wait_for(attempt, remaining(timeout_ms, asked_at))
      end
      raise_unless_ok(status, message)
      new_lock(attempt, renewal)
    end

    def lock_params(renewal, validity)
      params = Native::LockParams.new
      raise_unless_ok(*Native.status_and_message { Native.redilock_lock_params_init(params) })
      params[:validity_ms_out] = validity
      if renewal
        params[:auto_renew] = true
        params[:max_hold_ms] = renewal.max_hold_ms
      end
      params
    end

    def new_lock(attempt, renewal)
      lock = Lock.new(self, attempt.c_name, attempt.token.read_string, attempt.fence.read_uint64,
                      attempt.validity.read_int64 / 1000.0, !renewal.nil?)
      watch_for_loss(lock, renewal.on_lost) if renewal&.on_lost
      lock
    end

    def remaining(timeout_ms, asked_at)
      return timeout_ms if timeout_ms == Native::WAIT_FOREVER

      [timeout_ms - (Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond) - asked_at), 1].max
    end

    # Waits for the lock on a helper thread (see #interruptibly). A lock taken just as this
    # thread was interrupted is unlocked, which also ends the auto-renewal it may have started.
    def wait_for(attempt, timeout_ms)
      unlock_if_taken = lambda do |status, _message|
        Native.redilock_unlock(@handle, attempt.c_name, attempt.token.read_string) if status == Native::STATUS_OK
      end
      interruptibly(unlock_if_taken) do |cancel|
        attempt.params[:cancel] = cancel
        attempt.call(@handle, timeout_ms)
      end
    end

    # Calls `on_lost` with the lock, once, if its renewal finds it lost, or the client is
    # closed before {Lock#unlock} is called (which counts the lease as lost). A Ruby thread
    # waits for the loss in the library (no polling) and ends with the lock's renewal: at
    # unlock, at the loss, or at close. It also ends when interrupted (interpreter exit),
    # thanks to #interruptibly.
    def watch_for_loss(lock, on_lost)
      watcher = Thread.new do
        # A thread inherits the interrupt mask of its maker: #synchronize holds interrupts
        # back while it acquires, and this thread must stay killable.
        Thread.handle_interrupt(Object => :immediate) do
          status, message, lost = interruptibly { |cancel| wait_for_loss(lock.token, cancel) }
          report_loss(lock, on_lost) if lease_lost?(lock, status, message, lost)
        end
      end
      watcher.name = "redilock loss watcher"
    end

    def wait_for_loss(token, cancel)
      lost = FFI::MemoryPointer.new(:bool)
      status, message = Native.status_and_message do
        Native.redilock_renewal_wait(@handle, token, Native::WAIT_FOREVER, cancel, lost)
      end
      [status, message, lost.read(:bool)]
    end

    # Whether the wait of #watch_for_loss ended in a loss. A loss the library found stays
    # one even if an unlock came since: that unlock then failed.
    def lease_lost?(lock, status, message, lost)
      case status
      # A wait in progress at close ends with lost = true: closing counts as a loss.
      when Native::STATUS_OK then lost
      # The wait began after close (this thread started late): the close ended the renewal,
      # a loss unless the lock was unlocked first.
      when Native::STATUS_CLOSED then !lock.unlocked?
      # The renewal ended before the wait began: only an unlock does that.
      when Native::STATUS_INVALID_ARGUMENT then false
      else raise Redilock.error_for(status, message)
      end
    end

    def report_loss(lock, on_lost)
      on_lost.call(lock)
    rescue StandardError => e # printed, as the thread has no caller to raise it to
      warn "redilock: the on_lost callback of lock '#{lock.name}' raised #{e.class}: #{e.message}"
    end

    # A native wait cannot be interrupted from Ruby (ffi offers no unblock function), but it
    # can be cancelled. So a helper thread makes the call (the block, given the cancellation
    # signal), and this thread waits for it, which Ruby can interrupt (Thread#raise,
    # Thread#kill, Timeout, interpreter exit): the signal then ends the call, and `abandoned`
    # is given what it returned.
    def interruptibly(abandoned = nil)
      Thread.handle_interrupt(Object => :never) do
        cancel = new_cancel
        helper = outcome = nil
        begin
          helper = Thread.new { yield cancel }
          outcome = Thread.handle_interrupt(Object => :immediate) { helper.value }
        ensure
          if helper && outcome.nil?
            Native.redilock_cancel_trigger(cancel)
            abandoned&.call(*helper.value)
          end
          Native.redilock_cancel_free(cancel)
        end
      end
    end

    def new_cancel
      out = FFI::MemoryPointer.new(:pointer)
      raise_unless_ok(*Native.status_and_message { Native.redilock_cancel_new(out) })
      out.read_pointer
    end

    def unlock_after_block(lock, block_raised)
      Thread.handle_interrupt(Object => :never) { lock.unlock }
    rescue Error
      raise unless block_raised # the block's own exception matters more
    end

    def raise_unless_ok(status, message)
      raise Redilock.error_for(status, message) unless status == Native::STATUS_OK
    end

    # Seconds as whole milliseconds, for the library, which checks the range (and says what is
    # wrong in its message). Rounded up, away from zero, so that no duration but 0 becomes 0
    # (the library's "default TTL" or "try once"), and saturated at the bounds of int64_t.
    def milliseconds(seconds, what)
      unless seconds.is_a?(Numeric) && seconds.real? && seconds.finite?
        raise ArgumentError, "#{what} must be a finite number of seconds, not #{seconds.inspect}"
      end

      ms = (seconds.abs * 1000).round(3).ceil # round first: 1.1 * 1000 is 1100.0000000000002
      (seconds.negative? ? -ms : ms).clamp(Native::INT64_MIN, Native::INT64_MAX)
    end

    # A TTL, max_hold or replica_ack_timeout: the library reads 0 as "none" or "the default",
    # which Ruby spells nil, so 0 is refused here (every other value by the library).
    def nonzero_milliseconds(seconds, what, nil_means)
      ms = milliseconds(seconds, what)
      raise ArgumentError, "#{what} must be greater than 0 seconds (#{nil_means})" if ms.zero?

      ms
    end

    # nil waits forever and 0 tries once, as in the library. A negative timeout is the
    # library's to refuse, so it is never passed as -1 ms, which means "wait forever" there.
    def timeout_milliseconds(timeout)
      return Native::WAIT_FOREVER if timeout.nil?

      ms = milliseconds(timeout, "timeout")
      ms == Native::WAIT_FOREVER ? ms - 1 : ms
    end

    # A file path, given as File.open takes it: a String, or an object with #to_path (Pathname).
    def c_path(path, what)
      c_string(path.respond_to?(:to_path) ? path.to_path : path, what)
    end

    # The library takes C strings: UTF-8 bytes without NUL.
    def c_string(text, what)
      text = text.to_s if text.is_a?(Symbol)
      raise ArgumentError, "#{what} must be a String, not #{text.class}" unless text.is_a?(String)

      utf8 = text.encode(Encoding::UTF_8)
      raise ArgumentError, "#{what} is not valid #{text.encoding}: #{text.inspect}" unless utf8.valid_encoding?
      raise ArgumentError, "#{what} must not contain a NUL character: #{text.inspect}" if utf8.include?("\0")

      utf8.freeze
    rescue EncodingError => e
      raise ArgumentError, "#{what} cannot be converted to UTF-8: #{e.message}"
    end
  end
end
