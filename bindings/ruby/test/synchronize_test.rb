# frozen_string_literal: true

require_relative "test_helper"

class SynchronizeTest < Minitest::Test
  include RedilockTestHelper

  def test_returns_the_block_value_and_unlocks
    client = new_client
    name = unique_name
    seen = nil
    assert_equal :done, client.synchronize(name, ttl: 10) { |lock|
      seen = lock
      assert_nil client.try_lock(name)
      :done
    }
    assert_equal name, seen.name
    client.try_lock(name).unlock
  end

  def test_unlocks_when_the_block_raises
    client = new_client
    name = unique_name
    assert_raises(ZeroDivisionError) { client.synchronize(name) { 1 / 0 } }
    client.try_lock(name).unlock
  end

  def test_unlocks_on_break_and_throw
    client = new_client
    name = unique_name
    [1].each { client.synchronize(name) { break } }
    catch(:out) { client.synchronize(name) { throw :out } }
    client.try_lock(name).unlock
  end

  def test_timeout_raises_not_acquired_without_running_the_block
    client = new_client
    name = unique_name
    held = client.lock(name)
    started = monotonic
    assert_raises(Redilock::NotAcquired) { client.synchronize(name, timeout: 0.2) { flunk "ran" } }
    assert_operator monotonic - started, :>=, 0.2
    assert_operator monotonic - started, :<, 0.2 + scaled(2)
    held.unlock
  end

  def test_expiry_during_the_block_raises_not_owner
    client = new_client
    name = unique_name
    error = assert_raises(Redilock::NotOwner) do
      client.synchronize(name, ttl: 0.05, auto_renew: false) { await_expiry(name) }
    end
    refute_kind_of Redilock::LockLost, error
  end

  def test_the_blocks_exception_wins_over_a_failed_unlock
    client = new_client
    name = unique_name
    assert_raises(KeyError) do
      client.synchronize(name, ttl: 0.05, auto_renew: false) do
        await_expiry(name)
        raise KeyError
      end
    end
  end
end
