# frozen_string_literal: true

require "timeout"
require_relative "test_helper"

class ThreadsTest < Minitest::Test
  include RedilockTestHelper

  def test_sixteen_threads_keep_an_exact_counter
    client = new_client
    name = unique_name("counter")
    counter = 0
    inside = 0
    overlaps = 0
    threads = Array.new(16) do
      Thread.new do
        25.times do
          client.synchronize(name, ttl: 5) do
            overlaps += 1 if (inside += 1) != 1
            seen = counter
            Thread.pass # invite another thread in: only the lock keeps it out
            counter = seen + 1
            inside -= 1
          end
        end
      end
    end
    threads.each(&:join)
    assert_equal 16 * 25, counter
    assert_equal 0, overlaps
  end

  # Blocking calls release the GVL: a thread waiting for a lock must not stall the others.
  def test_other_threads_run_while_one_waits
    client = new_client
    name = unique_name
    held = client.lock(name)
    waiter = Thread.new { client.lock(name, timeout: 1.5) rescue Redilock::NotAcquired }
    assert_other_threads_run_while(waiter)
    held.unlock
  end

  def test_native_calls_that_wait_release_the_gvl
    client = new_client
    name = unique_name
    held = client.lock(name)
    handle = client.instance_variable_get(:@handle)
    token = FFI::MemoryPointer.new(:char, Redilock::Native::TOKEN_LEN)
    waiter = Thread.new { Redilock::Native.redilock_lock_ex(handle, name, 1000, 1500, nil, token, token.size, nil) }
    assert_other_threads_run_while(waiter)
    assert_equal Redilock::Native::STATUS_NOT_ACQUIRED, waiter.value
    held.unlock
  end

  # redilock_last_error() is thread-local: each thread must read its own failure's message.
  def test_each_thread_gets_its_own_error_message
    holder = new_client
    client = new_client
    names = Array.new(16) { |i| unique_name("mine-#{i}") }
    held = names.map { |name| holder.lock(name) }
    mixed_up = Array.new(16) do |i|
      Thread.new do
        Array.new(20) do
          message = assert_raises(Redilock::NotAcquired) { client.lock(names[i], timeout: i.even? ? 0 : 0.01) }.message
          message.include?("'#{names[i]}'") ? nil : message
        end.compact
      end
    end.flat_map(&:value)
    assert_empty mixed_up
    held.each(&:unlock)
  end

  def test_timeout_interrupts_a_wait_forever_and_leaves_no_lock
    client = new_client
    name = unique_name
    held = new_client.lock(name)
    started = monotonic
    assert_raises(Timeout::Error) { Timeout.timeout(0.2) { client.lock(name) } }
    assert_operator monotonic - started, :<, 1
    held.unlock
    client.try_lock(name).unlock
  end

  def test_thread_kill_and_raise_interrupt_a_wait
    client = new_client
    name = unique_name
    held = client.lock(name)
    killed = Thread.new { client.lock(name) }
    raised = Thread.new do
      Thread.current.report_on_exception = false
      client.synchronize(name) { flunk "ran" }
    end
    sleep 0.1
    killed.kill
    raised.raise(Interrupt)
    refute_nil killed.join(1), "a killed waiter ends at once"
    assert_raises(Interrupt) { raised.join(1) }
    held.unlock
    client.try_lock(name).unlock
  end

  def test_a_lock_taken_just_as_the_wait_is_interrupted_is_released
    client = new_client
    name = unique_name
    20.times do
      held = client.lock(name)
      waiter = Thread.new { client.synchronize(name) { sleep } }
      sleep 0.02
      held.unlock # the waiter wakes, takes the lock, or is killed just before
      waiter.kill.join
      assert client.lock(name, timeout: 1).unlock
    end
  end

  def test_close_ends_waits_in_progress
    client = Redilock::Client.new(@url, ttl: 10)
    name = unique_name
    held = new_client.lock(name)
    waiter = Thread.new do
      Thread.current.report_on_exception = false
      client.lock(name)
    end
    sleep 0.1
    client.close
    error = assert_raises(Redilock::Error) { waiter.join(2) }
    assert_equal 202, error.status
    assert_match(/closed while waiting/, error.message)
    held.unlock
  end

  def test_helper_threads_do_not_outlive_their_wait
    client = new_client
    name = unique_name
    before = Thread.list.size
    held = client.lock(name)
    assert_raises(Redilock::NotAcquired) { client.lock(name, timeout: 0.05) }
    assert_raises(Timeout::Error) { Timeout.timeout(0.05) { client.lock(name) } }
    held.unlock
    sleep 0.05
    assert_equal before, Thread.list.size
  end

  private

  def assert_other_threads_run_while(waiter)
    sleep 0.1 # let the waiter start waiting
    ticks = 0
    started = monotonic
    ticks += 1 while monotonic - started < 0.3
    assert_operator monotonic - started, :<, 0.6, "the main thread was held up"
    assert_operator ticks, :>, 1000
    assert waiter.alive?, "the waiter is still waiting"
    waiter.join
  end
end
