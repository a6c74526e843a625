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

    # @api private
    def initialize(client, name, token, fence, auto_renew)
      @client = client
      @name = name
      @token = token.freeze
      @fence = fence
      @auto_renew = auto_renew
      @lost = false
      @unlocked = false
    end

    # @return [Boolean] whether the library renews this lock in the background
    def auto_renew?
      @auto_renew
    end

    # Resets the lock's TTL, if this token still holds it (an expired lock is never
    # re-created). The next auto-renewal, if any, sets it back to the TTL the lock was taken
    # with. Note that this replaces `Object#extend` for locks.
    #
    # @param ttl [Numeric] the new TTL in seconds, counted from now
    # @return [true]
    # @raise [ArgumentError] for a TTL that is not positive or too large (nothing is sent)
    # @raise [NotOwner] when the lock is no longer held by this token
    def extend(ttl)
      @client.extend_lock(@name, @token, ttl)
    end

    # @return [Float, nil] the remaining TTL in seconds; nil when the key has no expiry
    #   (which only other software sets)
    # @raise [NotOwner] when the lock is no longer held by this token
    def ttl
      @client.lock_ttl(@name, @token)
    end

    # Whether the auto-renewal lost the lock: a renewal found it gone, or could not reach
    # Redis before the lease ran out. Asks the library, without I/O. After {#unlock}, it
    # tells whether the lock had been lost.
    #
    # @return [Boolean] always false without auto-renewal
    def lost?
      return @lost if @unlocked || !@auto_renew

      # nil: an unlock on another thread ended the renewal meanwhile and set @lost.
      @lost = @client.renewal_lost?(@token) || @lost
    end

    # Releases the lock, waking the waiters, and ends its auto-renewal.
    #
    # @return [true]
    # @raise [LockLost] when the auto-renewed lock was lost while held
    # @raise [NotOwner] when the lock is no longer held by this token: its TTL ended (and
    #   maybe someone else took it), or it was already released
    def unlock
      @client.release(@name, @token)
    rescue NotOwner => e
      raise if @unlocked || !@auto_renew

      @lost = true
      raise LockLost.new("lock '#{@name}' was lost while held: its auto-renewal found it gone or could not " \
                         "reach Redis in time", e.status)
    ensure
      @unlocked = true # last: once it is set, lost? is final
    end

    # @return [Boolean] whether {#unlock} was called
    def unlocked?
      @unlocked
    end

    # @return [String]
    def inspect
      "#<#{self.class} name=#{@name.inspect} fence=#{@fence}>"
    end
  end
end
