# frozen_string_literal: true

module Redilock
  # A client of one Redis server: one connection and one I/O thread in the native library,
  # shared by every Ruby thread that uses it. Create one per process (after `fork`, create a
  # new one in the child) and share it between threads.
  #
  # Durations are seconds as Numeric (Integer, Float or Rational), like `Mutex#sleep` and
  # `Timeout.timeout`; they are rounded up to whole milliseconds.
  #
  # @example
  #   client = Redilock::Client.new(ENV.fetch("REDIS_URL"), ttl: 30)
  #   client.synchronize("orders:42", timeout: 2) { ship(order) }
  #   client.close
  class Client
    OPTION_SETTERS = {
      ttl: :redilock_options_set_default_ttl_ms,
      retry_interval: :redilock_options_set_retry_interval_ms,
      connect_timeout: :redilock_options_set_connect_timeout_ms,
      command_timeout: :redilock_options_set_command_timeout_ms
    }.freeze
    private_constant :OPTION_SETTERS

    # Frees a client handle, but only in the process that created it: a forked child
    # inherits the parent's handle (and its finalizer) and must leave it to the parent.
    HandleRelease = Struct.new(:owner_pid) do
      def call(pointer)
        Native.redilock_free(pointer) if Process.pid == owner_pid
      end
    end
    private_constant :HandleRelease

    # Creates a client. No I/O happens here: it connects on first use (see {#ping}) and
    # reconnects by itself after Redis comes back.
    #
    # @param url [String] `redis://[user:password@]host[:port][/db]` or
    #   `unix:///path/to/redis.sock`
    # @param ttl [Numeric, nil] TTL in seconds for lock calls that pass none; nil: every call
    #   must pass `ttl:`
    # @param retry_interval [Numeric, nil] how often a waiter re-checks a held lock when no
    #   release message reaches it (library default 0.25 s)
    # @param connect_timeout [Numeric, nil] how long connecting may take (default 2 s)
    # @param command_timeout [Numeric, nil] how long one Redis reply may take (default 2 s)
    # @param key_prefix [String, nil] put in front of every lock name to form its Redis key
    # @raise [ArgumentError] for an unusable URL or option
    def initialize(url, ttl: nil, retry_interval: nil, connect_timeout: nil, command_timeout: nil, key_prefix: nil)
      @guard = Mutex.new
      @in_flight = 0
      @waits = []
      @closed = false
      durations = { ttl: ttl, retry_interval: retry_interval, connect_timeout: connect_timeout,
                    command_timeout: command_timeout }.compact
      @handle = open_handle(c_string(url, "url"), durations, key_prefix && c_string(key_prefix, "key_prefix"))
    end

    # Holds the lock `name` while the block runs, like `Mutex#synchronize`, and always
    # releases it. Interrupts (Thread#raise, Thread#kill, Timeout) never leave the lock taken.
    #
    # @param name [String, Symbol] the lock's name (any UTF-8 text without NUL)
    # @param ttl [Numeric, nil] seconds after which Redis drops the lock if it is not
    #   released; nil: the client's default
    # @param timeout [Numeric, nil] at most this many seconds to wait; nil waits until
    #   acquired, 0 tries once
    # @yieldparam lock [Lock] the lock held
    # @return [Object] the block's value
    # @raise [NotAcquired] when the timeout passed first
    # @raise [NotOwner] when the block finished but the lock had expired meanwhile (when the
    #   block raised, its exception is the one raised)
    def synchronize(name, ttl: nil, timeout: nil)
      raise ArgumentError, "synchronize needs a block" unless block_given?

      lock = nil
      block_raised = false
      begin
        # Interrupts are held back until `lock` is assigned, so the ensure sees every lock taken.
        Thread.handle_interrupt(Object => :never) { lock = acquire(name, ttl, timeout) }
        yield lock
      rescue Exception # noted, then re-raised as is
        block_raised = true
        raise
      ensure
        release_after_block(lock, block_raised) if lock
      end
    end

    # Acquires the lock `name`, waiting while another owner holds it.
    #
    # @param (see #synchronize)
    # @return [Lock] the lock, to release with {Lock#unlock}
    # @raise [NotAcquired] when the timeout passed first
    def lock(name, ttl: nil, timeout: nil)
      acquire(name, ttl, timeout)
    end

    # Acquires the lock `name` if it is free, without waiting.
    #
    # @param (see #synchronize)
    # @return [Lock, nil] the lock, or nil when another owner holds it
    def try_lock(name, ttl: nil)
      acquire(name, ttl, 0)
    rescue NotAcquired
      nil
    end

    # Checks that Redis answers, connecting first if needed.
    #
    # @return [true]
    # @raise [ConnectionError] when Redis cannot be reached
    def ping
      with_handle { |handle| raise_unless_ok(*Native.status_and_message { Native.redilock_ping(handle) }) }
      true
    end

    # Releases the native client. Idempotent. Waits in progress end with a {Redilock::Error};
    # calls made afterwards raise one. Locks still held are not released: their TTL ends them.
    #
    # @return [nil]
    def close
      @guard.synchronize do
        next if @closed

        @closed = true
        @waits.each { |cancel| Native.redilock_cancel_trigger(cancel) }
        free_handle if @in_flight.zero?
      end
      nil
    end

    # @return [Boolean] whether {#close} was called
    def closed?
      @closed
    end

    # Releases a lock by name and token; {Lock#unlock} is the public way.
    #
    # @return [true]
    # @raise [NotOwner] when the token no longer holds the lock
    # @api private
    def release(c_name, token)
      with_handle do |handle|
        raise_unless_ok(*Native.status_and_message { Native.redilock_unlock(handle, c_name, token) })
      end
      true
    end

    private

    def open_handle(c_url, durations, c_key_prefix)
      out = FFI::MemoryPointer.new(:pointer)
      raise_unless_ok(*Native.status_and_message { Native.redilock_options_new(out) })
      options = out.read_pointer
      begin
        durations.each do |option, seconds|
          ms = positive_milliseconds(seconds, option)
          raise_unless_ok(*Native.status_and_message { Native.public_send(OPTION_SETTERS[option], options, ms) })
        end
        if c_key_prefix
          raise_unless_ok(*Native.status_and_message { Native.redilock_options_set_key_prefix(options, c_key_prefix) })
        end
        raise_unless_ok(*Native.status_and_message { Native.redilock_new_with_options(c_url, options, out) })
      ensure
        Native.redilock_options_free(options)
      end
      FFI::AutoPointer.new(out.read_pointer, HandleRelease.new(Process.pid))
    end

    def acquire(name, ttl, timeout)
      c_name = c_string(name, "name")
      ttl_ms = ttl.nil? ? 0 : positive_milliseconds(ttl, "ttl")
      timeout_ms = timeout.nil? ? Native::WAIT_FOREVER : milliseconds(timeout, "timeout")
      token = FFI::MemoryPointer.new(:char, Native::TOKEN_LEN)
      with_handle do |handle|
        asked_at = Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond)
        # Trying once first keeps the helper thread of #wait_for off the uncontended path.
        status, message = Native.status_and_message do
          Native.redilock_lock(handle, c_name, ttl_ms, Native::NO_WAIT, token, Native::TOKEN_LEN)
        end
        if status == Native::STATUS_NOT_ACQUIRED && timeout_ms != Native::NO_WAIT
          status, message = wait_for(handle, c_name, ttl_ms, remaining(timeout_ms, asked_at), token)
          # Only #close cancels a wait that returns here.
          message = "the client was closed while waiting for lock '#{c_name}'" if status == Native::STATUS_CANCELLED
        end
        raise_unless_ok(status, message)
      end
      Lock.new(self, c_name, token.read_string)
    end

    def remaining(timeout_ms, asked_at)
      return timeout_ms if timeout_ms == Native::WAIT_FOREVER

      [timeout_ms - (Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond) - asked_at), 1].max
    end

    # A native wait cannot be interrupted from Ruby (ffi offers no unblock function), but it
    # can be cancelled. So a helper thread waits, and this thread waits for it, which Ruby
    # can interrupt: then the native wait is cancelled, and a lock it took meanwhile released.
    def wait_for(handle, c_name, ttl_ms, timeout_ms, token)
      Thread.handle_interrupt(Object => :never) do
        cancel = new_cancel
        outcome = nil
        begin
          waiter = Thread.new do
            Native.status_and_message do
              Native.redilock_lock_cancellable(handle, c_name, ttl_ms, timeout_ms, cancel, token, Native::TOKEN_LEN)
            end
          end
          outcome = Thread.handle_interrupt(Object => :immediate) { waiter.value }
        ensure
          abandon_wait(waiter, cancel, handle, c_name, token) if waiter && outcome.nil?
          forget_cancel(cancel)
        end
      end
    end

    def abandon_wait(waiter, cancel, handle, c_name, token)
      Native.redilock_cancel_trigger(cancel)
      status, = waiter.value
      Native.redilock_unlock(handle, c_name, token.read_string) if status == Native::STATUS_OK
    end

    # A cancellation signal that #close triggers while the wait is in progress.
    def new_cancel
      out = FFI::MemoryPointer.new(:pointer)
      raise_unless_ok(*Native.status_and_message { Native.redilock_cancel_new(out) })
      cancel = out.read_pointer
      @guard.synchronize { @waits << cancel }
      cancel
    end

    def forget_cancel(cancel)
      @guard.synchronize { @waits.delete(cancel) }
      Native.redilock_cancel_free(cancel)
    end

    def release_after_block(lock, block_raised)
      Thread.handle_interrupt(Object => :never) { lock.unlock }
    rescue Error
      raise unless block_raised # the block's own exception matters more
    end

    # Lends the native handle for one call; #close frees it once no call uses it.
    def with_handle
      @guard.synchronize do
        raise Error, "the Redilock client is closed" if @closed

        @in_flight += 1
      end
      begin
        yield @handle
      ensure
        @guard.synchronize do
          @in_flight -= 1
          free_handle if @closed && @in_flight.zero?
        end
      end
    end

    def free_handle
      @handle.free
    end

    def raise_unless_ok(status, message)
      raise Redilock.error_for(status, message) unless status == Native::STATUS_OK
    end

    # Seconds as whole milliseconds, rounded up so that a small positive value never becomes
    # 0, which the library reads as "default TTL" or "do not wait".
    def milliseconds(seconds, what)
      unless seconds.is_a?(Numeric) && seconds.real? && seconds.finite? && seconds >= 0
        raise ArgumentError, "#{what} must be a finite, non-negative number of seconds, not #{seconds.inspect}"
      end

      ms = (seconds * 1000).round(3).ceil # round first: 1.1 * 1000 is 1100.0000000000002
      raise ArgumentError, "#{what} must be at most #{Native::MAX_TTL_MS / 1000} seconds" if ms > Native::MAX_TTL_MS

      ms
    end

    def positive_milliseconds(seconds, what)
      ms = milliseconds(seconds, what)
      raise ArgumentError, "#{what} must be greater than 0 seconds" if ms.zero?

      ms
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
