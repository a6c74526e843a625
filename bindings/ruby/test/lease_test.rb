# frozen_string_literal: true

require "timeout"
require "tmpdir"
require_relative "test_helper"

# Leases: fencing numbers, extend, remaining TTL, auto-renewal and how a loss is reported.
# Timing bounds are generous: the suite must pass on a loaded two-core machine.
class LeaseTest < Minitest::Test
  include RedilockTestHelper

  HEADER_DIR = File.expand_path("../../../include", __dir__)

  def test_lock_params_layout_matches_the_c_header
    skip "no C compiler" unless system("cc --version", out: File::NULL, err: File::NULL)
    skip "no redilock.h beside the gem" unless File.file?(File.join(HEADER_DIR, "redilock.h"))
    params = Redilock::Native::LockParams
    offsets = params.members.map { |field| %(printf(" #{field} %zu", offsetof(redilock_lock_params, #{field}));) }
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "layout.c"), <<~C)
        #include <stddef.h>
        #include <stdio.h>
        #include "redilock.h"
        int main(void) {
            printf("size %zu", sizeof(redilock_lock_params));
            #{offsets.join(' ')}
            return 0;
        }
      C
      assert system("cc", "-I#{HEADER_DIR}", "-o", File.join(dir, "layout"), File.join(dir, "layout.c")), "compiles"
      expected = IO.popen([File.join(dir, "layout")], &:read).split.each_slice(2).to_h { |k, v| [k, Integer(v)] }
      actual = params.members.to_h { |field| [field.to_s, params.offset_of(field)] }.merge("size" => params.size)
      assert_equal expected, actual
    end
  end

  def test_fences_strictly_increase_across_clients
    clients = [new_client, new_client]
    name = unique_name
    fences = Array.new(10) do |i|
      lock = clients[i % 2].lock(name, timeout: 1)
      lock.unlock
      lock.fence
    end
    assert_kind_of Integer, fences.first
    assert_equal fences.sort.uniq, fences
    assert_equal 1, clients.first.lock(unique_name).tap(&:unlock).fence, "each name counts on its own"
    assert_operator clients.first.synchronize(name, &:fence), :>, fences.last
  end

  def test_extend_a_held_lock
    client = new_client
    name = unique_name
    lock = client.lock(name, ttl: 2)
    assert_equal true, lock.extend(60)
    assert_operator redis_cli("PTTL", name).to_i, :>, 50_000
    assert_in_delta 60, lock.ttl, 10
    lock.unlock
    assert_raises(Redilock::NotOwner) { lock.extend(5) }
  end

  def test_extend_of_an_expired_lock_never_recreates_it
    lock = new_client.lock(name = unique_name, ttl: 0.05)
    sleep 0.15
    assert_raises(Redilock::NotOwner) { lock.extend(5) }
    assert_equal "0", redis_cli("EXISTS", name)
  end

  def test_extend_never_touches_another_owners_lock
    client = new_client
    name = unique_name
    stale = client.lock(name, ttl: 0.05)
    sleep 0.15
    current = new_client.lock(name, ttl: 10)
    assert_raises(Redilock::NotOwner) { stale.extend(100) }
    assert_raises(Redilock::NotOwner) { stale.ttl }
    assert_operator redis_cli("PTTL", name).to_i, :<=, 10_000
    current.unlock
  end

  def test_invalid_extend_ttls_are_refused_before_anything_is_sent
    lock = new_client.lock(name = unique_name, ttl: 10)
    sent = scripts_run_during do
      { 0 => /greater than 0/, -1 => /non-negative/, 10**17 => /at most/, Float::NAN => /finite/,
        "5" => /number of seconds/, nil => /number of seconds/ }.each do |ttl, message|
        assert_match message, assert_raises(ArgumentError) { lock.extend(ttl) }.message
      end
    end
    assert_equal 0, sent
    assert_operator redis_cli("PTTL", name).to_i, :>, 9_000, "PEXPIRE 0 would have deleted it"
    lock.unlock
  end

  def test_ttl_of_a_plain_lock
    lock = new_client.lock(name = unique_name, ttl: 5)
    refute lock.auto_renew?
    refute lock.lost?
    assert_kind_of Float, lock.ttl
    assert_in_delta 4.5, lock.ttl, 0.5
    redis_cli("PERSIST", name)
    assert_nil lock.ttl, "no expiry"
    lock.unlock
    assert_raises(Redilock::NotOwner) { lock.ttl }
  end

  def test_auto_renewal_keeps_a_lock_five_times_its_ttl_and_stops_at_unlock
    lock = new_client.lock(name = unique_name, ttl: 0.3, auto_renew: true)
    rival = new_client
    assert lock.auto_renew?
    started = monotonic
    while monotonic - started < 1.5
      assert_nil rival.try_lock(name, ttl: 0.3)
      sleep 0.05
    end
    refute lock.lost?
    assert_equal true, lock.unlock
    assert_equal "0", redis_cli("EXISTS", name)
    refute lock.lost?
    assert_equal 0, scripts_run_during { sleep 0.6 }, "no renewals after unlock"
  end

  def test_failed_and_cancelled_acquisitions_start_no_renewal
    client = new_client
    name = unique_name
    held = new_client.lock(name, ttl: 10)
    assert_nil client.try_lock(name, ttl: 0.15, auto_renew: true)
    assert_raises(Redilock::NotAcquired) { client.lock(name, ttl: 0.15, timeout: 0.1, auto_renew: true) }
    assert_raises(Timeout::Error) { Timeout.timeout(0.1) { client.lock(name, ttl: 0.15, auto_renew: true) } }
    # Several renewal periods of a 0.15 s TTL.
    assert_equal 0, scripts_run_during { sleep 0.5 }, "no renewal runs"
    held.unlock
  end

  def test_a_lock_deleted_behind_the_holder_is_reported_lost
    client = new_client
    name = unique_name
    told = Queue.new
    lock = client.lock(name, ttl: 0.3, auto_renew: true, on_lost: ->(lost) { told << [lost, monotonic] })
    refute lock.lost?
    redis_cli("DEL", name)
    deleted = monotonic
    assert eventually { lock.lost? }, "lost? turns true"
    reported, at = Timeout.timeout(3) { told.pop }
    assert_same lock, reported
    assert_operator at - deleted, :<, 1, "the callback ran promptly"
    error = assert_raises(Redilock::NotOwner) { lock.unlock }
    assert_kind_of Redilock::LockLost, error
    assert_equal 201, error.status
    assert lock.lost?
    assert_raises(Redilock::NotOwner) { lock.unlock }
  end

  def test_max_hold_caps_the_renewal
    client = new_client
    name = unique_name
    lock = client.lock(name, ttl: 0.2, auto_renew: true, max_hold: 0.5)
    sleep 0.35
    assert_equal "1", redis_cli("EXISTS", name), "renewed past its TTL"
    assert eventually { lock.lost? }, "lost once the cap and the last TTL ran out"
    assert_equal "0", redis_cli("EXISTS", name)
    assert_raises(Redilock::LockLost) { lock.unlock }
  end

  def test_a_failing_callback_does_not_silence_the_others
    client = new_client
    names = [unique_name, unique_name]
    told = Queue.new
    _, stderr = capture_io do
      client.lock(names[0], ttl: 0.2, auto_renew: true, on_lost: ->(_) { raise "boom" })
      client.lock(names[1], ttl: 0.2, auto_renew: true, on_lost: ->(lock) { told << lock.name })
      redis_cli("DEL", *names)
      assert_equal names[1], Timeout.timeout(3) { told.pop }
      sleep 0.1
    end
    assert_match(/on_lost callback of lock '#{names[0]}' raised RuntimeError: boom/, stderr)
  end

  def test_no_callback_after_unlock_or_close_and_the_watcher_thread_ends
    client = Redilock::Client.new(@url, ttl: 10)
    told = []
    unlocked = client.lock(unique_name, ttl: 0.2, auto_renew: true, on_lost: ->(lock) { told << lock })
    left = client.lock(name = unique_name, ttl: 0.2, auto_renew: true, on_lost: ->(lock) { told << lock })
    assert_includes thread_names, "redilock loss watcher"
    unlocked.unlock
    client.close
    renewals = scripts_run_during do
      redis_cli("DEL", name)
      sleep 0.5
    end
    assert_empty told
    assert_equal 0, renewals, "closing stopped the renewal"
    refute_includes thread_names, "redilock loss watcher"
    assert_raises(Redilock::Error) { left.lost? }
  end

  def test_renewal_options_need_auto_renew
    client = new_client
    {
      -> { client.lock("n", max_hold: 5) } => /need auto_renew: true/,
      -> { client.try_lock("n", on_lost: -> {}) } => /need auto_renew: true/,
      -> { client.lock("n", auto_renew: true, on_lost: :nope) } => /on_lost must respond to call/,
      -> { client.lock("n", auto_renew: true, max_hold: 0) } => /max_hold must be greater than 0/,
      -> { client.synchronize("n", max_hold: -1) { flunk } } => /max_hold must be a finite/
    }.each do |call, message|
      assert_match message, assert_raises(ArgumentError) { call.call }.message
    end
  end

  def test_synchronize_renews_through_a_block_longer_than_the_ttl
    client = new_client
    rival = new_client
    name = unique_name
    value = client.synchronize(name, ttl: 0.2) do |lock|
      assert lock.auto_renew?
      sleep 1
      assert_nil rival.try_lock(name)
      refute lock.lost?
      lock.fence
    end
    assert_kind_of Integer, value
    assert_equal "0", redis_cli("EXISTS", name)
  end

  def test_synchronize_raises_lock_lost_when_the_lease_was_lost_during_the_block
    client = new_client
    name = unique_name
    told = Queue.new
    finished = false
    assert_raises(Redilock::LockLost) do
      client.synchronize(name, ttl: 0.3, on_lost: ->(lock) { told << lock }) do |lock|
        redis_cli("DEL", name)
        assert eventually { lock.lost? }
        finished = true
      end
    end
    assert finished, "the block ran to its end"
    assert_equal name, Timeout.timeout(3) { told.pop }.name
    assert_raises(KeyError) do
      client.synchronize(name, ttl: 0.3) do |lock|
        redis_cli("DEL", name)
        eventually { lock.lost? }
        raise KeyError
      end
    end
  end

  private

  def thread_names
    Thread.list.map(&:name)
  end
end
