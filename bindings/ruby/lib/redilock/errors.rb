# frozen_string_literal: true

module Redilock
  # The base of every error the library raises, except ArgumentError for unusable arguments
  # (statuses 100 and 101, and what the Ruby side refuses before calling the library).
  class Error < StandardError
    # @return [Integer, nil] the C ABI status (e.g. 200), or nil for an error found on the
    #   Ruby side (a closed client)
    attr_reader :status

    # @param message [String]
    # @param status [Integer, nil]
    def initialize(message = nil, status = nil)
      super(message)
      @status = status
    end
  end

  # The lock is held by another owner and the wait ended (try once, or `timeout:` passed).
  class NotAcquired < Error; end

  # The lock is no longer held by this token: it expired, or was already released.
  class NotOwner < Error; end

  # An auto-renewed lock was lost while held: a renewal found it gone, or could not reach
  # Redis before the lease ran out. Raised by {Lock#unlock} and at the end of
  # {Client#synchronize}; {Lock#lost?} tells it earlier.
  class LockLost < NotOwner; end

  # Redis is unreachable, the connection broke, or a reply timed out.
  class ConnectionError < Error; end

  # Redis replied with an error (NOAUTH, NOPERM, READONLY, OOM, ...).
  class RedisError < Error; end

  # The client was created in a parent process before `fork`; create one in this process.
  class WrongProcess < Error; end

  ERROR_CLASSES = {
    102 => WrongProcess,
    200 => NotAcquired,
    201 => NotOwner,
    300 => ConnectionError,
    301 => RedisError
  }.freeze
  private_constant :ERROR_CLASSES

  # The exception for a failed C ABI call.
  #
  # @param status [Integer] a non-zero status
  # @param message [String] the library's message for it
  # @return [Exception]
  # @api private
  def self.error_for(status, message)
    return ArgumentError.new(message) if [100, 101].include?(status)

    ERROR_CLASSES.fetch(status, Error).new(message, status)
  end
end
