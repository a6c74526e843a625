# frozen_string_literal: true

require_relative "test_helper"

# replica_acks: and replica_ack_timeout: against the test server, which has no replica.
class ReplicaAcksTest < Minitest::Test
  include RedilockTestHelper

  # One replica required: every acquisition is released and raises NotReplicated, and the
  # block of synchronize never runs. A count beyond int32_t is still beyond any server.
  def test_too_few_replicas_raise_not_replicated_and_leave_nothing_held
    [1, 2**40].each do |count|
      client = new_client(replica_acks: count, replica_ack_timeout: 0.05)
      name = unique_name
      {
        lock: -> { client.lock(name, timeout: scaled(5)) },
        try_lock: -> { client.try_lock(name) },
        auto_renewed: -> { client.lock(name, auto_renew: true, on_lost: ->(_) { flunk "nothing to lose" }) },
        synchronize: -> { client.synchronize(name) { flunk "the block ran without the lock" } }
      }.each do |call, acquire|
        error = assert_raises(Redilock::NotReplicated, "#{call}, replica_acks: #{count}") { acquire.call }
        assert_equal Redilock::Native::STATUS_NOT_REPLICATED, error.status
        assert_match(/acknowledged by 0 of the #{[count, Redilock::Native::INT32_MAX].min} replicas/, error.message)
        assert_equal 0, redis("EXISTS", name), "#{call} left the lock held"
        assert_empty queue(name), "#{call} left a waiter in line"
      end
    end
  end

  def test_off_or_auto_without_replicas_locks
    [{ replica_acks: 0 }, { replica_acks: :auto, replica_ack_timeout: 0.05 }, {}].each do |options|
      lock = new_client(**options).lock(unique_name)
      assert_equal true, lock.extend(20), "an extend waits for no replica either: #{options}"
      lock.unlock
    end
  end

  def test_bad_values_raise_argument_error
    {
      { replica_acks: "1" } => /replica_acks must be an Integer or :auto, not "1"/,
      { replica_acks: nil } => /replica_acks must be an Integer or :auto, not nil/,
      { replica_acks: -2 } => /replica count must be .* not -2/,
      { replica_ack_timeout: 0 } => /replica_ack_timeout must be greater than 0 seconds \(nil: half the command/,
      { replica_ack_timeout: -1 } => /replica acknowledgement timeout must not be negative, not -1000 ms/,
      { replica_ack_timeout: "1" } => /replica_ack_timeout must be a finite number of seconds/,
      { command_timeout: 1, replica_ack_timeout: 1 } => /\(1000 ms\) must be shorter than the command timeout/
    }.each do |options, message|
      assert_match message, assert_raises(ArgumentError) { Redilock::Client.new(@url, **options) }.message
    end
  end
end
