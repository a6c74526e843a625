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
    waiter = Thread.new { client.lock(name) }
    assert_other_threads_run_while(waiter, name)
    held.unlock
    waiter.value.unlock
  end

  def test_native_calls_that_wait_release_the_gvl
    client = new_client
    name = unique_name
    held = client.lock(name)
    handle = client.instance_variable_get(:@handle)
    token = FFI::MemoryPointer.new(:char, Redilock::Native::TOKEN_LEN)
    waiter = Thread.new do
      Redilock::Native.redilock_lock_ex(handle, name, 1000, Redilock::Native::WAIT_FOREVER, nil, token, token.size, nil)
    end
    assert_other_threads_run_while(waiter, name)
    held.unlock
    assert_equal Redilock::Native::STATUS_OK, waiter.value
    assert_equal Redilock::Native::STATUS_OK, Redilock::Native.redilock_unlock(handle, name, token.read_string)
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

  # Interrupted waiters give back their place in the queue at once: with this retry interval a
  # place left behind would last minutes, and hold up every later caller.
  def test_timeout_interrupts_a_wait_forever_and_leaves_no_lock
    client = new_client(retry_interval: 60)
    name = unique_name
    held = new_client.lock(name)
    started = monotonic
    assert_raises(Timeout::Error) { Timeout.timeout(0.2) { client.lock(name) } }
    assert_operator monotonic - started, :<, scaled(2)
    assert_left_nothing_behind(name, held)
  end

  def test_thread_kill_and_raise_interrupt_a_wait
    client = new_client(retry_interval: 60)
    name = unique_name
    held = new_client.lock(name)
    killed = Thread.new { client.lock(name) }
    raised = Thread.new do
      Thread.current.report_on_exception = false
      client.synchronize(name) { flunk "ran" }
    end
    await_queue(name, 2)
    killed.kill
    raised.raise(Interrupt)
    refute_nil killed.join(scaled(2)), "a killed waiter ends at once"
    assert_raises(Interrupt) { raised.join(scaled(2)) }
    assert_left_nothing_behind(name, held)
  end

  def test_a_lock_taken_just_as_the_wait_is_interrupted_is_released
    client = new_client
    name = unique_name
    20.times do
      held = client.lock(name)
      waiter = Thread.new { client.synchronize(name) { sleep } }
      await_queue(name, 1)
      held.unlock # the waiter wakes, takes the lock, or is killed just before
      waiter.kill.join
      assert client.lock(name, timeout: scaled(2)).unlock
    end
  end

  def test_close_ends_waits_in_progress
    client = new_client
    name = unique_name
    held = new_client.lock(name)
    waiter = Thread.new do
      Thread.current.report_on_exception = false
      client.lock(name)
    end
    await_queue(name, 1)
    closed_at = monotonic
    client.close
    error = assert_raises(Redilock::ClientClosed) { waiter.join(scaled(2)) }
    assert_operator monotonic - closed_at, :<, scaled(2), "promptly"
    assert_equal Redilock::Native::STATUS_CLOSED, error.status
    assert_match(/closed/, error.message)
    assert_left_nothing_behind(name, held)
  end

  # Lock calls starting as the client is closed, their first attempt in flight: none may take
  # the lock or keep waiting on the closed client (and take the lock once it is released).
  def test_close_while_lock_calls_start_leaves_no_wait_and_no_lock
    name = unique_name
    held = new_client.lock(name)
    10.times do
      assert eventually { queue(name).empty? }, "the last round's callers left the queue"
      client = new_client
      callers = Array.new(16) do
        Thread.new do
          client.lock(name)
          :locked
        rescue Redilock::ClientClosed
          :closed
        end
      end
      assert eventually { !queue(name).empty? }, "a caller is waiting"
      client.close
      assert_equal [:closed] * callers.size, callers.map { |caller| caller.join(scaled(3))&.value }
    end
    assert_left_nothing_behind(name, held)
  end

  def test_helper_threads_do_not_outlive_their_wait
    client = new_client
    name = unique_name
    before = Thread.list.size
    held = client.lock(name)
    assert_raises(Redilock::NotAcquired) { client.lock(name, timeout: 0.05) }
    assert_raises(Timeout::Error) { Timeout.timeout(0.05) { client.lock(name) } }
    held.unlock
    assert eventually { Thread.list.size == before }, "back to #{before} threads: #{Thread.list.inspect}"
  end

  private

  def assert_other_threads_run_while(waiter, name)
    await_queue(name, 1)
    ticks = 0
    started = monotonic
    ticks += 1 while monotonic - started < 0.3
    assert_operator monotonic - started, :<, 0.3 + scaled(2), "the main thread was held up"
    assert_operator ticks, :>, 1000
    assert waiter.alive?, "the waiter is still waiting"
  end

  # No waiter is left in the queue of lock `name` (which `held` holds), and once it is
  # released the lock is free: nobody took it behind the test's back.
  def assert_left_nothing_behind(name, held)
    assert eventually { queue(name).empty? }, "no place left in the queue: #{queue(name)}"
    held.unlock
    assert_equal 0, redis("EXISTS", name), "nobody took the released lock"
    new_client.try_lock(name)&.unlock or flunk "the lock is free for a new caller"
  end
end
