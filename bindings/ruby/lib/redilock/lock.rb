# frozen_string_literal: true

module Redilock
  # A lock held in Redis, as returned by {Client#lock} and {Client#try_lock}. Redis drops it
  # when its TTL ends if {#unlock} was not called first.
  class Lock
    # @return [String] the lock's name (UTF-8)
    attr_reader :name

    # @return [String] the owner token that proves this holder took the lock
    attr_reader :token

    # @api private
    def initialize(client, name, token)
      @client = client
      @name = name
      @token = token.freeze
    end

    # Releases the lock, waking the waiters.
    #
    # @return [true]
    # @raise [NotOwner] when the lock is no longer held by this token: its TTL ended (and
    #   maybe someone else took it), or it was already released
    def unlock
      @client.release(@name, @token)
    end

    # @return [String]
    def inspect
      "#<#{self.class} name=#{@name.inspect}>"
    end
  end
end
