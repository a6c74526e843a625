# frozen_string_literal: true

module Redilock
  # A lock held in Redis, as returned by {Client#lock} and {Client#try_lock}. Redis drops it
  # when its TTL ends if {#unlock} was not called first, unless it is auto-renewed.
  class Lock
    # @return [String] the lock's name (UTF-8)
    attr_reader :name

    # @return [String] the owner token that proves this holder took the lock
    attr_reader :token

    # @return [Integer] the fencing number of this acquisition: it strictly increases with
    #   every acquisition of this name, by any holder. Send it with each write to the
    #   resource the lock protects, and have the resource refuse numbers older than the
    #   newest it has seen: that stops the late writes of a holder paused past its lease.
    attr_reader :fence

    # @return [Float] seconds the lock was sure to stay held from when the lock call returned,
    #   unless extended: the TTL less the time the acquisition took (and, for a quorum client,
    #   less an allowance for clock drift). Work that must finish under the lock has to fit in
    #   it; it does not count down (see {#remaining_ttl}).
    attr_reader :validity

    # What {#lost?} and {#unlock} learn, kept apart from the lock's own instance variables so
    # that `lock.freeze` (a shallow freeze) leaves them working.
    State = Struct.new(:lost, :unlocked)
    private_constant :State

    # @api private
    def initialize(client, name, token, fence, validity, auto_renew)
      @client = client
      @name = name
      @token = token.freeze
      @fence = fence
      @validity = validity
      @auto_renew = auto_renew
      @state = State.new(false, false)
    end

    # `dup` and `clone` copy the state too, as they copied it when it was instance variables.
    #
    # @api private
    def initialize_copy(source)
      super
      @state = @state.dup
    end

    # @return [Boolean] whether the library renews this lock in the background
    def auto_renew?
      @auto_renew
    end

    # Resets the lock's TTL when given a number of seconds; given modules, it is
    # `Object#extend`, so decorators, test doubles and instrumentation can still mix modules
    # into a lock.
    #
    # @overload extend(ttl)
    #   Resets the lock's TTL, if this token still holds it (an expired lock is never
    #   re-created). The next auto-renewal, if any, sets it back to the TTL the lock was taken
    #   with.
    #   @param ttl [Numeric] the new TTL in seconds, counted from now
    #   @return [true]
    #   @raise [ArgumentError] for a TTL that is not finite (Ruby's message), or not positive or
    #     too large (the library's message); nothing is sent
    #   @raise [NotOwner] when the lock is no longer held by this token
    # @overload extend(*modules)
    #   `Object#extend`: adds the modules' instance methods to this lock object alone. Nothing
    #   is sent to Redis. Its own errors (TypeError for a Class, FrozenError for a frozen
    #   lock) are raised as they are.
    #   @param modules [Array<Module>] one or more modules
    #   @return [self]
    # @raise [ArgumentError] for any other arguments: none, a TTL that is not Numeric (a
    #   String, nil, ...), several TTLs, or TTLs and modules mixed
    def extend(*args)
      return @client.extend_lock(@name, @token, args.first) if args.size == 1 && args.first.is_a?(Numeric)
      return super if !args.empty? && args.all?(Module)

      given = args.empty? ? "no arguments" : args.map(&:inspect).join(", ")
      raise ArgumentError, "Lock#extend takes a TTL (a number of seconds) or Modules to mix in (Object#extend), " \
                           "got #{given}"
    end

    # @return [Float, nil] the remaining TTL in seconds; nil when the key has no expiry
    #   (which only other software sets)
    # @raise [NotOwner] when the lock is no longer held by this token
    def remaining_ttl
      @client.remaining_ttl(@name, @token)
    end

    # Whether the auto-renewal lost the lock: a renewal found it gone, or could not reach
    # Redis before the lease ran out. Asks the library, without I/O. Once {#unlock} is
    # called, it tells whether the unlock found the lock lost.
    #
    # @return [Boolean] always false without auto-renewal; true once the client is closed,
    #   which ends the renewal and counts the lease as lost
    def lost?
      return @state.lost if @state.unlocked || !@auto_renew

      # nil: an unlock on another thread ended the renewal meanwhile.
      @state.lost = @client.renewal_lost?(@token) || @state.lost
    end

    # Unlocks the lock, handing it to the first waiter in line, and ends its auto-renewal.
    #
    # @return [true]
    # @raise [LockLost] when the auto-renewed lock was lost while held
    # @raise [NotOwner] when the lock is no longer held by this token: its TTL ended (and
    #   maybe someone else took it), or it was already unlocked
    def unlock
      unlocked_before = @state.unlocked
      @state.unlocked = true # first: a close from now on is no loss for `on_lost:`
      @client.unlock(@name, @token)
    rescue NotOwner => e
      raise if unlocked_before || !@auto_renew

      @state.lost = true
      raise LockLost.new("lock '#{@name}' was lost while held: its auto-renewal found it gone or could not " \
                         "reach Redis in time", e.status)
    end

    # @return [Boolean] whether {#unlock} was called
    def unlocked?
      @state.unlocked
    end

    # The name, fence and state, never the token: anyone who reads the token (in a log, say)
    # can unlock or extend the lock. The state is what this object has seen, without asking
    # Redis or the library: "lost" once {#lost?} or {#unlock} found the lock lost, else
    # "unlocked" after {#unlock}, else "acquired" (which an expired lock still shows).
    # `to_s` is Object's, which shows no instance variable either.
    #
    # @return [String] e.g. `#<Redilock::Lock name="orders:42" fence=7 state=acquired auto_renew=false>`
    def inspect
      state = if @state.lost then "lost"
              elsif @state.unlocked then "unlocked"
              else "acquired"
              end
      "#<#{self.class} name=#{@name.inspect} fence=#{@fence} state=#{state} auto_renew=#{@auto_renew}>"
    end
  end
end
