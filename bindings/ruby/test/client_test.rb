# frozen_string_literal: true

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

  # A waiter wakes on the release itself: its retry interval here is far longer than the bound.
  def test_lock_waits_for_the_release
    client = new_client(retry_interval: 60)
    name = unique_name
    held = new_client.lock(name)
    waiter = Thread.new { client.lock(name, ttl: 5) }
    await_queue(name, 1)
    assert waiter.alive?, "waits while the lock is held"
    released = monotonic
    held.unlock
    lock = waiter.value
    assert_operator monotonic - released, :<, scaled(2)
    assert_equal lock.token, redis("GET", name)
    lock.unlock
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
      -> { client.lock("n", ttl: 0) } => /ttl must be greater than 0/,
      -> { client.lock("n", ttl: -1) } => /ttl must be a finite, non-negative number/,
      -> { client.lock("n", ttl: "10") } => /ttl must be a finite/,
      -> { client.lock("n", ttl: 10**17) } => /ttl must be at most/,
      -> { client.lock("n", timeout: -0.5) } => /timeout must be a finite/,
      -> { client.lock("n", timeout: Float::INFINITY) } => /timeout must be a finite/,
      -> { client.lock("n", timeout: Float::NAN) } => /timeout must be a finite/,
      -> { client.try_lock("n", ttl: Complex(1, 1)) } => /ttl must be a finite/,
      -> { client.synchronize("n") } => /needs a block/,
      -> { Redilock::Client.new(nil) } => /url must be a String/,
      -> { Redilock::Client.new("http://nowhere") } => /invalid Redis URL/,
      -> { Redilock::Client.new(@url, retry_interval: 0) } => /retry_interval must be greater than 0/,
      -> { Redilock::Client.new(@url, key_prefix: "a\0") } => /key_prefix must not contain a NUL/
    }.each do |call, message|
      assert_match message, assert_raises(ArgumentError) { call.call }.message
    end
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
       -> { lock.extend(5) }, -> { lock.ttl }, -> { client.synchronize("n") { flunk } }].each do |call|
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
