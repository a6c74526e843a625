# frozen_string_literal: true

require "timeout"
require_relative "test_helper"

class ClientTest < Minitest::Test
  include RedilockTestHelper

  def test_versions_agree
    assert_equal Redilock::VERSION, Redilock.library_version
  end

  def test_ping
    assert_equal true, new_client.ping
  end

  def test_try_lock_returns_a_lock_or_nil
    client = new_client
    name = unique_name
    lock = client.try_lock(name, ttl: 5)
    assert_instance_of Redilock::Lock, lock
    assert_equal name, lock.name
    assert_match(/\A[0-9a-f]{32}\z/, lock.token)
    assert_nil client.try_lock(name, ttl: 5)
    assert_equal true, lock.unlock
    other = client.try_lock(name)
    refute_equal lock.token, other.token
    other.unlock
  end

  # A waiter is handed the lock by the unlock itself: its retry interval (the library's safety
  # net) is here far longer than the bound.
  def test_lock_waits_for_the_unlock
    client = new_client(retry_interval: 60)
    name = unique_name
    held = new_client.lock(name)
    waiter = Thread.new { client.lock(name, ttl: 5) }
    await_queue(name, 1)
    assert waiter.alive?, "waits while the lock is held"
    unlocked = monotonic
    held.unlock
    lock = waiter.value
    assert_operator monotonic - unlocked, :<, scaled(2)
    assert_equal lock.token, redis("GET", name)
    lock.unlock
  end

  # Each unlock hands the lock to the next waiter in line, promptly, in the order they came,
  # though none of them re-checks before a minute.
  def test_waiters_are_handed_the_lock_in_turn
    name = unique_name
    held = new_client.lock(name)
    handed = Queue.new
    waiters = Array.new(3) do |i|
      client = new_client(retry_interval: 60)
      go_on = Queue.new
      thread = Thread.new do
        lock = client.lock(name, ttl: 10)
        handed << [i, monotonic]
        go_on.pop
        lock.unlock
      end
      await_queue(name, i + 1)
      [thread, go_on]
    end
    unlocked = monotonic
    held.unlock
    waiters.each_with_index do |(thread, go_on), i|
      index, at = Timeout.timeout(scaled(3)) { handed.pop }
      assert_equal i, index, "the waiter first in line is handed the lock"
      assert_operator at - unlocked, :<, scaled(2), "waiter #{i} was handed the lock promptly"
      unlocked = monotonic
      go_on << true
      assert_equal true, thread.value
    end
    assert_equal 0, redis("EXISTS", name)
  end

  def test_lock_timeout_raises_not_acquired
    client = new_client
    name = unique_name
    held = client.lock(name)
    started = monotonic
    error = assert_raises(Redilock::NotAcquired) { client.lock(name, timeout: 0.3) }
    assert_operator monotonic - started, :>=, 0.3
    assert_operator monotonic - started, :<, 0.3 + scaled(2)
    assert_equal Redilock::Native::STATUS_NOT_ACQUIRED, error.status
    assert_includes error.message, name
    assert_raises(Redilock::NotAcquired) { client.lock(name, timeout: 0) }
    held.unlock
  end

  def test_unlock_of_an_expired_lock_raises_not_owner
    client = new_client
    name = unique_name
    lock = client.lock(name, ttl: 0.1)
    await_expiry(name)
    error = assert_raises(Redilock::NotOwner) { lock.unlock }
    assert_equal Redilock::Native::STATUS_NOT_OWNER, error.status
    assert_kind_of Redilock::Error, error
  end

  def test_second_unlock_raises_not_owner
    lock = new_client.lock(unique_name)
    lock.unlock
    assert_raises(Redilock::NotOwner) { lock.unlock }
  end

  def test_unlock_never_releases_another_owners_lock
    client = new_client
    name = unique_name
    expired = client.lock(name, ttl: 0.1)
    await_expiry(name)
    current = client.lock(name)
    assert_raises(Redilock::NotOwner) { expired.unlock }
    assert_nil client.try_lock(name)
    current.unlock
  end

  def test_names_with_colons_utf8_and_symbols
    client = new_client
    ["orders:42", "a:b:c", "{braces}", "with space", "ünïcödé-锁", :reports].each do |name|
      lock = client.lock(name, timeout: 1)
      assert_equal name.to_s, lock.name
      assert_equal Encoding::UTF_8, lock.name.encoding
      lock.unlock
    end
  end

  def test_names_are_compared_as_utf8_bytes
    client = new_client
    name = "café:#{SecureRandom.hex(4)}"
    lock = client.lock(name)
    assert_nil client.try_lock(name.encode(Encoding::ISO_8859_1))
    assert_nil client.try_lock(name.encode(Encoding::UTF_16LE))
    lock.unlock
  end

  def test_fractional_and_rational_seconds
    client = new_client
    name = unique_name
    lock = client.lock(name, ttl: Rational(3, 2), timeout: 0.5)
    assert_includes 1..1500, redis("PTTL", name), "1.5 s, not rounded to whole seconds"
    started = monotonic
    assert_raises(Redilock::NotAcquired) { client.lock(name, timeout: Rational(1, 20)) }
    assert_operator monotonic - started, :>=, 0.05
    assert_operator monotonic - started, :<, 0.05 + scaled(2)
    lock.unlock
  end

  def test_default_ttl_comes_from_the_client
    client = new_client(ttl: nil)
    error = assert_raises(ArgumentError) { client.lock(unique_name) }
    assert_match(/TTL/, error.message)
    client.lock(unique_name, ttl: 1).unlock
  end

  def test_key_prefix
    prefixed = new_client(key_prefix: "app:")
    plain = new_client
    name = unique_name
    lock = prefixed.lock(name)
    assert_nil plain.try_lock("app:#{name}")
    plain.lock(name).unlock
    lock.unlock
  end

  def test_bad_arguments_raise_argument_error
    client = new_client
    {
      -> { client.lock("") } => /empty/,
      -> { client.lock("a\0b") } => /NUL/,
      -> { client.lock(42) } => /name must be a String, not Integer/,
      -> { client.lock("bad\xFF".b.force_encoding(Encoding::UTF_8)) } => /not valid UTF-8/,
      -> { client.lock("\xFF".b) } => /cannot be converted to UTF-8/,
      -> { client.lock("n", ttl: 0) } => /ttl must be greater than 0 seconds \(nil: the client's ttl:\)/,
      -> { client.lock("n", ttl: -1) } => /TTL must not be negative, not -1000 ms/,
      -> { client.lock("n", ttl: "10") } => /ttl must be a finite number of seconds, not "10"/,
      -> { client.lock("n", ttl: 10**17) } => /TTL must be at most #{Redilock::Native::MAX_TTL_MS} ms/,
      -> { client.lock("n", ttl: 10**30) } => /TTL must be at most #{Redilock::Native::MAX_TTL_MS} ms/,
      -> { client.lock("n", timeout: -0.5) } => /timeout must be .* or positive, not -500 ms/,
      -> { client.lock("n", timeout: Float::INFINITY) } => /timeout must be a finite number/,
      -> { client.lock("n", timeout: Float::NAN) } => /timeout must be a finite number/,
      -> { client.try_lock("n", ttl: Complex(1, 1)) } => /ttl must be a finite number/,
      -> { client.synchronize("n") } => /needs a block/,
      -> { Redilock::Client.new(nil) } => /url must be a String/,
      -> { Redilock::Client.new("http://nowhere") } => /invalid Redis URL/,
      -> { Redilock::Client.new(@url, ttl: 0) } => /ttl must be greater than 0 seconds/,
      -> { Redilock::Client.new(@url, retry_interval: 0) } => /retry interval must be greater than 0 ms/,
      -> { Redilock::Client.new(@url, command_timeout: :soon) } => /command_timeout must be a finite number/,
      -> { Redilock::Client.new(@url, key_prefix: "a\0") } => /key_prefix must not contain a NUL/
    }.each do |call, message|
      assert_match message, assert_raises(ArgumentError) { call.call }.message
    end
  end

  # The library owns the range of every duration: Ruby only turns seconds into milliseconds
  # (away from zero: a tiny negative value stays negative, never "default TTL", "try once" or
  # "wait forever") and raises the library's own message as ArgumentError, sending nothing.
  def test_negative_durations_raise_argument_error_with_the_librarys_message
    native = Redilock::Native
    client = new_client
    lock = client.lock(name = unique_name, ttl: 10, auto_renew: true)
    handle = client.instance_variable_get(:@handle)
    token = FFI::MemoryPointer.new(:char, native::TOKEN_LEN)
    lock_ex = ->(ttl_ms, timeout_ms, params = nil) do
      native.redilock_lock_ex(handle, name, ttl_ms, timeout_ms, params, token, token.size, nil)
    end
    renewed = native::LockParams.new.tap { |params| native.redilock_lock_params_init(params) }
    renewed[:auto_renew] = true
    renewed[:max_hold_ms] = -2500
    options = FFI::MemoryPointer.new(:pointer).tap { |out| native.redilock_options_new(out) }.read_pointer
    cases = {
      -> { client.lock(name, ttl: -1.5) } => -> { lock_ex.call(-1500, 0) },
      -> { client.try_lock(name, ttl: -0.0001) } => -> { lock_ex.call(-1, 0) },
      -> { client.lock(name, timeout: -Rational(1, 2)) } => -> { lock_ex.call(0, -500) },
      -> { client.lock(unique_name, timeout: -0.0001) } => -> { lock_ex.call(0, -2) }, # -1 would wait forever
      -> { client.lock(name, auto_renew: true, max_hold: -2.5) } => -> { lock_ex.call(0, 0, renewed) },
      -> { lock.extend(-3) } => -> { native.redilock_extend(handle, name, lock.token, -3000) },
      -> { lock.extend(0) } => -> { native.redilock_extend(handle, name, lock.token, 0) },
      -> { new_client(ttl: -10) } => -> { native.redilock_options_set_default_ttl_ms(options, -10_000) },
      -> { new_client(retry_interval: -0.25) } => -> { native.redilock_options_set_retry_interval_ms(options, -250) },
      -> { new_client(connect_timeout: -1) } => -> { native.redilock_options_set_connect_timeout_ms(options, -1000) },
      -> { new_client(command_timeout: -1) } => -> { native.redilock_options_set_command_timeout_ms(options, -1000) }
    }
    sent = scripts_run_during do
      cases.each do |ruby_call, native_call|
        status, expected = native.status_and_message(&native_call)
        assert_equal native::STATUS_INVALID_ARGUMENT, status, expected
        assert_match(/-?\d+ ms\b/, expected, "the library's message, in its unit")
        assert_equal expected, assert_raises(ArgumentError) { ruby_call.call }.message
      end
    end
    assert_equal 0, sent, "refused before anything was sent"
    refute lock.lost?
    lock.unlock
  ensure
    native.redilock_options_free(options)
  end

  def test_connection_error
    client = new_client("redis://127.0.0.1:1", connect_timeout: 0.3)
    error = assert_raises(Redilock::ConnectionError) { client.ping }
    assert_equal Redilock::Native::STATUS_CONNECTION, error.status
    assert_includes error.message, "127.0.0.1:1"
    assert_raises(Redilock::ConnectionError) { client.lock(unique_name, timeout: 1) }
  end

  def test_redis_error
    error = assert_raises(Redilock::RedisError) { new_client("#{@url}/99").ping }
    assert_equal Redilock::Native::STATUS_REDIS, error.status
    assert_includes error.message, "DB index"
  end

  def test_close_is_idempotent_and_later_calls_raise
    client = new_client
    lock = client.lock(unique_name)
    refute client.closed?
    assert_nil client.close
    assert_nil client.close
    assert client.closed?
    sent = scripts_run_during do
      [-> { client.ping }, -> { client.lock("n") }, -> { client.try_lock("n") }, -> { lock.unlock },
       -> { lock.extend(5) }, -> { lock.remaining_ttl }, -> { client.synchronize("n") { flunk } }].each do |call|
        error = assert_raises(Redilock::ClientClosed) { call.call }
        assert_match(/closed/, error.message)
        assert_equal Redilock::Native::STATUS_CLOSED, error.status
      end
    end
    assert_equal 0, sent
  end

  def test_close_from_many_threads_at_once
    client = new_client
    client.lock(unique_name, auto_renew: true)
    assert_equal [nil] * 8, Array.new(8) { Thread.new { client.close } }.map(&:value)
    assert_raises(Redilock::ClientClosed) { client.ping }
  end

  # The garbage clients' own handles are freed (through redilock_free), which closes their
  # connections to Redis.
  def test_clients_left_to_the_garbage_collector_are_freed
    freed = Queue.new
    free = Redilock::Native.method(:redilock_free)
    Redilock::Native.stub(:redilock_free, ->(pointer) { freed << pointer.address; free.call(pointer) }) do
      addresses = garbage_clients(20)
      connected = connected_clients
      freed_garbage = []
      assert eventually {
        GC.start
        freed_garbage.concat(Array.new(freed.size) { freed.pop } & addresses)
        freed_garbage.size >= 10
      }, "most garbage clients were freed (the GC is conservative: a few may survive)"
      assert eventually { connected_clients <= connected - freed_garbage.size }, "their connections closed"
    end
  end

  # A call holds a reference to its client's handle, so the GC cannot free it mid-call.
  def test_a_client_in_use_is_not_freed
    name = unique_name
    held = new_client.lock(name)
    waiter = Thread.new { Redilock::Client.new(@url, ttl: 5).lock(name).tap(&:unlock).fence }
    await_queue(name, 1)
    3.times { GC.start }
    held.unlock
    assert_kind_of Integer, waiter.value
  end

  # A client that is not fair takes a free lock whoever waits in line.
  def test_a_client_that_is_not_fair_barges
    name = unique_name
    holder = new_client
    holder.lock(name)
    fair = new_client(retry_interval: 60)
    in_line = Thread.new { fair.lock(name, timeout: scaled(20)) }
    await_queue(name, 1)
    redis("DEL", name) # free, with a waiter in line
    barger = new_client(fair: false)
    barged = barger.try_lock(name)
    refute_nil barged, "a client that is not fair takes the free lock"
    assert_equal 1, queue(name).size, "the fair waiter is still in line"
    barged.unlock
    in_line.value.unlock
  end

  def test_fair_is_true_or_false
    assert_raises(ArgumentError) { new_client(fair: nil) }
  end

  private

  # Addresses of the handles of `count` clients, each pinged (connected), no longer referenced.
  def garbage_clients(count)
    Array.new(count) do
      client = Redilock::Client.new(@url, ttl: 1)
      client.ping
      client.instance_variable_get(:@handle).address
    end
  end

  def connected_clients
    redis("INFO", "clients")[/^connected_clients:(\d+)/, 1].to_i
  end

end
