# frozen_string_literal: true

require_relative "constants"

module Redilock
  # The base of every error the library raises, except ArgumentError for unusable arguments
  # (statuses INVALID_ARGUMENT and NULL_ARGUMENT, and what the Ruby side refuses before
  # calling the library).
  class Error < StandardError
    # @return [Integer, nil] the C ABI status, a REDILOCK_STATUS_* number of redilock.h (nil
    #   only for an Error made by other code)
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

  # The lock is no longer held by this token: it expired, or was already unlocked.
  class NotOwner < Error; end

  # An auto-renewed lock was lost while held: a renewal found it gone, or could not reach
  # Redis before the lease ran out. Raised by {Lock#unlock} and at the end of
  # {Client#synchronize}; {Lock#lost?} tells it earlier.
  class LockLost < NotOwner; end

  # Redis is unreachable, the connection broke, or a reply timed out.
  class ConnectionError < Error; end

  # Redis replied with an error (NOAUTH, NOPERM, READONLY, OOM, ...).
  class RedisError < Error; end

  # Too few replicas acknowledged the lock write in time: the lock was released, since a
  # failover could have lost it.
  class NotReplicated < Error; end
  # A quorum client could not reach enough of its masters: more of them failed or did not
  # answer within the node timeout than the quorum allows, so whether the lock is free is
  # unknown ({NotAcquired}, by contrast, means enough masters answered that it is held). The
  # message names each master (its address, never a password) and its answer.
  class QuorumUnavailable < Error; end

  # The TLS handshake with Redis failed, or a certificate was refused (rediss:// URLs).
  class TLSError < Error; end

  # The client was created in a parent process before `fork`; create one in this process.
  class WrongProcess < Error; end

  # The client was closed ({Client#close}): waits in progress end with it, and calls made
  # afterwards raise it.
  class ClientClosed < Error; end

  # No usable libredilock: no candidate opened, or those that did are of another ABI than
  # this gem's. Raised by `require "redilock"`; its message lists what was tried and how to
  # provide the library (see NativeLibrary for the order).
  class LibraryNotFound < LoadError
    # @return [Hash{String => String}] each candidate tried (a path, or a name for the
    #   system's dynamic linker), in order, with why it was refused
    attr_reader :refusals

    # @param message [String]
    # @param refusals [Hash{String => String}]
    def initialize(message, refusals)
      super(message)
      @refusals = refusals
    end
  end

  # The class of each status, by the status constants of Native (generated from the header).
  ERROR_CLASSES = {
    Native::STATUS_WRONG_PROCESS => WrongProcess,
    Native::STATUS_NOT_ACQUIRED => NotAcquired,
    Native::STATUS_NOT_OWNER => NotOwner,
    Native::STATUS_CLOSED => ClientClosed,
    Native::STATUS_CONNECTION => ConnectionError,
    Native::STATUS_REDIS => RedisError,
    Native::STATUS_TLS => TLSError,
    Native::STATUS_NOT_REPLICATED => NotReplicated,
    Native::STATUS_QUORUM_UNAVAILABLE => QuorumUnavailable
  }.freeze
  private_constant :ERROR_CLASSES

  ARGUMENT_STATUSES = [Native::STATUS_INVALID_ARGUMENT, Native::STATUS_NULL_ARGUMENT].freeze
  private_constant :ARGUMENT_STATUSES

  # The exception for a failed C ABI call.
  #
  # @param status [Integer] a non-zero status
  # @param message [String] the library's message for it
  # @return [Exception]
  # @api private
  def self.error_for(status, message)
    return ArgumentError.new(message) if ARGUMENT_STATUSES.include?(status)

    ERROR_CLASSES.fetch(status, Error).new(message, status)
  end
end
