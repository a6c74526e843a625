# frozen_string_literal: true

require "io/wait"
require "timeout"
require_relative "test_helper"

# Leases: fencing numbers, extend, remaining TTL, auto-renewal and how a loss is reported.
# TTLs and time bounds are scaled: the suite must pass on a loaded two-core machine.
class LeaseTest < Minitest::Test
  include RedilockTestHelper

  # The TTL of locks that renewals must keep: renewed at a third of it, they survive the
  # renewal (or Redis) being starved of the CPU for a second.
  RENEWED_TTL = 1.5

  def test_fences_strictly_increase_across_clients
    clients = [new_client, new_client]
    name = unique_name
    seconds, micros = redis("TIME").map { |part| Integer(part) }
    fences = Array.new(10) do |i|
      lock = clients[i % 2].lock(name, timeout: scaled(2))
      lock.unlock
      lock.fence
    end
    assert_kind_of Integer, fences.first
    assert_equal fences.sort.uniq, fences, "strictly increasing"
    assert_operator fences.first, :>=, seconds * 1_000_000 + micros, "never below the Redis clock in µs: 64 bits read whole"
    assert_operator clients.first.synchronize(name, &:fence), :>, fences.last
  end

  def test_extend_a_held_lock
    client = new_client
    name = unique_name
    lock = client.lock(name, ttl: 2)
    assert_equal true, lock.extend(60)
    assert_operator redis("PTTL", name), :>, 50_000
    assert_in_delta 60, lock.remaining_ttl, 10
    lock.unlock
    assert_raises(Redilock::NotOwner) { lock.extend(5) }
  end

  def test_extend_of_an_expired_lock_never_recreates_it
    lock = new_client.lock(name = unique_name, ttl: 0.05)
    await_expiry(name)
    assert_raises(Redilock::NotOwner) { lock.extend(5) }
    assert_equal 0, redis("EXISTS", name)
  end

  def test_extend_never_touches_another_owners_lock
    client = new_client
    name = unique_name
    stale = client.lock(name, ttl: 0.05)
    await_expiry(name)
    current = new_client.lock(name, ttl: 10)
    assert_raises(Redilock::NotOwner) { stale.extend(100) }
    assert_raises(Redilock::NotOwner) { stale.remaining_ttl }
    assert_operator redis("PTTL", name), :<=, 10_000
    current.unlock
  end

  # Ruby refuses what is no finite number; the library refuses the rest, in its own words.
  def test_invalid_extend_ttls_are_refused_before_anything_is_sent
    lock = new_client.lock(name = unique_name, ttl: 10)
    sent = scripts_run_during do
      { 0 => /TTL must be greater than 0 ms/, -1 => /TTL must not be negative, not -1000 ms/,
        10**17 => /TTL must be at most #{Redilock::Native::MAX_TTL_MS} ms/, Float::NAN => /ttl must be a finite/,
        "5" => /number of seconds/, nil => /number of seconds/ }.each do |ttl, message|
        assert_match message, assert_raises(ArgumentError) { lock.extend(ttl) }.message
      end
    end
    assert_equal 0, sent
    assert_operator redis("PTTL", name), :>, 9_000, "PEXPIRE 0 would have deleted it"
    lock.unlock
  end

  def test_remaining_ttl_of_a_plain_lock
    lock = new_client.lock(name = unique_name, ttl: 5)
    refute lock.auto_renew?
    refute lock.lost?
    refute_respond_to lock, :ttl, "one name per concept: remaining_ttl"
    assert_kind_of Float, lock.remaining_ttl
    assert_includes((5 - scaled(1))..5, lock.remaining_ttl)
    assert_kind_of Float, lock.validity
    assert_includes((5 - scaled(1))..5, lock.validity, "the TTL less the acquisition's time")
    redis("PERSIST", name)
    assert_nil lock.remaining_ttl, "no expiry"
    lock.unlock
    assert_raises(Redilock::NotOwner) { lock.remaining_ttl }
  end

  def test_auto_renewal_keeps_a_lock_past_its_ttl_and_stops_at_unlock
    ttl = scaled(RENEWED_TTL)
    lock = new_client.lock(name = unique_name, ttl: ttl, auto_renew: true)
    rival = new_client
    assert lock.auto_renew?
    started = monotonic
    while monotonic - started < 2 * ttl
      assert_nil rival.try_lock(name, ttl: ttl)
      sleep ttl / 6
    end
    refute lock.lost?
    assert_equal true, lock.unlock
    assert_equal 0, redis("EXISTS", name)
    refute lock.lost?
    assert_equal 0, scripts_run_during { sleep ttl }, "no renewals after unlock"
  end

  def test_failed_and_cancelled_acquisitions_start_no_renewal
    client = new_client
    name = unique_name
    ttl = scaled(0.15)
    held = new_client.lock(name, ttl: 10)
    assert_nil client.try_lock(name, ttl: ttl, auto_renew: true)
    assert_raises(Redilock::NotAcquired) { client.lock(name, ttl: ttl, timeout: 0.1, auto_renew: true) }
    assert_raises(Timeout::Error) { Timeout.timeout(0.1) { client.lock(name, ttl: ttl, auto_renew: true) } }
    assert eventually { queue(name).empty? }, "the waits gave back their places"
    assert_equal 0, scripts_run_during { sleep 3 * ttl }, "no renewal runs"
    held.unlock
  end

  def test_on_lost_is_called_once_with_the_lock_after_a_loss
    client = new_client
    name = unique_name
    told = Queue.new
    lock, watcher = started_watching do
      client.lock(name, ttl: scaled(RENEWED_TTL), auto_renew: true, on_lost: ->(lost) { told << [lost, monotonic] })
    end
    refute lock.lost?
    assert_empty told, "not called while the lock is held"
    redis("DEL", name)
    deleted = monotonic
    reported, at = Timeout.timeout(scaled(3)) { told.pop }
    assert_same lock, reported
    assert_operator at - deleted, :<, scaled(2), "the callback ran promptly"
    assert lock.lost?
    refute_nil watcher.join(scaled(3)), "its watcher ended with the loss"
    assert_empty told, "called once"
    error = assert_raises(Redilock::LockLost) { lock.unlock }
    assert_equal Redilock::Native::STATUS_NOT_OWNER, error.status
    assert lock.lost?
    assert_raises(Redilock::NotOwner) { lock.unlock }
  end

  def test_max_hold_caps_the_renewal
    client = new_client
    name = unique_name
    ttl = scaled(RENEWED_TTL)
    lock = client.lock(name, ttl: ttl, auto_renew: true, max_hold: 2 * ttl)
    sleep 1.5 * ttl
    assert_equal 1, redis("EXISTS", name), "renewed past its TTL"
    assert eventually { lock.lost? }, "lost once the cap and the last TTL ran out"
    await_expiry(name) # the library counts the lease from before Redis extended it: it may outlast lost?
    assert_raises(Redilock::LockLost) { lock.unlock }
  end

  def test_a_failing_callback_does_not_silence_the_others
    client = new_client
    names = [unique_name, unique_name]
    told = Queue.new
    _, stderr = capture_io do
      client.lock(names[0], ttl: scaled(0.2), auto_renew: true, on_lost: ->(_) { raise "boom" })
      client.lock(names[1], ttl: scaled(0.2), auto_renew: true, on_lost: ->(lock) { told << lock.name })
      redis("DEL", *names)
      assert_equal names[1], Timeout.timeout(scaled(3)) { told.pop }
      assert eventually { $stderr.string.include?("boom") }
    end
    assert_match(/on_lost callback of lock '#{names[0]}' raised RuntimeError: boom/, stderr)
  end

  # A lock unlocked is never reported; close ends the renewal of the others, which counts as
  # a loss: their callbacks are called (once), and every watcher ends.
  def test_unlock_ends_the_watch_and_close_reports_the_locks_still_held
    client = new_client
    told = Queue.new
    ttl = scaled(RENEWED_TTL)
    (unlocked, left), watchers = started_watching(2) do
      [client.lock(unique_name, ttl: ttl, auto_renew: true, on_lost: ->(lock) { told << lock }),
       client.lock(name = unique_name, ttl: ttl, auto_renew: true, on_lost: ->(lock) { told << lock })]
    end
    unlocked.unlock
    assert eventually { watchers.count(&:alive?) == 1 }, "the unlock ended its watcher"
    client.close
    assert_same left, Timeout.timeout(scaled(3)) { told.pop }
    assert watchers.all? { |watcher| watcher.join(scaled(3)) }, "every watcher ended"
    assert_empty told, "called once, and never for the lock unlocked"
    renewals = scripts_run_during do
      redis("DEL", name)
      sleep ttl
    end
    assert_equal 0, renewals, "closing stopped the renewal"
    assert left.lost?, "closing counts it as lost"
    refute unlocked.lost?
  end

  # The watcher's native wait cannot be interrupted; its thread cancels it when killed at exit.
  def test_the_interpreter_exits_while_a_lock_is_watched
    script = <<~RUBY
      require "redilock"
      lock = Redilock::Client.new(ENV.fetch("REDIS_URL")).lock(ARGV[0], ttl: 10, auto_renew: true, on_lost: ->(_) {})
      sleep 0.01 until (Thread.list - [Thread.current]).all?(&:stop?) # the watcher is waiting
      STDOUT.puts lock.fence
      STDOUT.flush
    RUBY
    reader, writer = IO.pipe
    pid = Process.spawn(RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", script, unique_name, out: writer)
    writer.close
    assert reader.wait_readable(scaled(10)), "the script took the lock"
    assert_match(/\A\d+\n\z/, reader.gets)
    exited = eventually(10) { Process.wait(pid, Process::WNOHANG) }
    assert exited, "the interpreter exited"
    assert_predicate $?, :success?
  ensure
    reader&.close
    if pid && !exited
      Process.kill(:KILL, pid)
      Process.wait(pid)
    end
  end

  def test_renewal_options_need_auto_renew
    client = new_client
    {
      -> { client.lock("n", max_hold: 5) } => /need auto_renew: true/,
      -> { client.try_lock("n", on_lost: -> {}) } => /need auto_renew: true/,
      -> { client.lock("n", auto_renew: true, on_lost: :nope) } => /on_lost must respond to call/,
      -> { client.lock("n", auto_renew: true, max_hold: 0) } => /max_hold must be greater than 0 seconds \(nil: no/,
      -> { client.synchronize("n", max_hold: -1) { flunk } } => /maximum hold time must not be negative, not -1000 ms/,
      -> { client.synchronize("n", max_hold: "1") { flunk } } => /max_hold must be a finite number/
    }.each do |call, message|
      assert_match message, assert_raises(ArgumentError) { call.call }.message
    end
  end

  def test_synchronize_renews_through_a_block_longer_than_the_ttl
    client = new_client
    rival = new_client
    name = unique_name
    ttl = scaled(RENEWED_TTL)
    value = client.synchronize(name, ttl: ttl) do |lock|
      assert lock.auto_renew?
      sleep 1.5 * ttl
      assert_nil rival.try_lock(name)
      refute lock.lost?
      lock.fence
    end
    assert_kind_of Integer, value
    assert_equal 0, redis("EXISTS", name)
  end

  def test_synchronize_raises_lock_lost_when_the_lease_was_lost_during_the_block
    client = new_client
    name = unique_name
    told = Queue.new
    finished = false
    assert_raises(Redilock::LockLost) do
      client.synchronize(name, ttl: scaled(0.3), on_lost: ->(lock) { told << lock }) do |lock|
        redis("DEL", name)
        assert eventually { lock.lost? }
        finished = true
      end
    end
    assert finished, "the block ran to its end"
    assert_equal name, Timeout.timeout(scaled(3)) { told.pop }.name
    assert_raises(KeyError) do
      client.synchronize(name, ttl: scaled(0.3)) do |lock|
        redis("DEL", name)
        eventually { lock.lost? }
        raise KeyError
      end
    end
  end

  private

  # What the block returns, and the `count` loss watchers (threads) it started.
  def started_watching(count = 1)
    before = loss_watchers
    value = yield
    watchers = loss_watchers - before
    assert_equal count, watchers.size, "one loss watcher per lock with on_lost"
    [value, count == 1 ? watchers.first : watchers]
  end

  def loss_watchers
    Thread.list.select { |thread| thread.name == "redilock loss watcher" }
  end
end
