# frozen_string_literal: true

require_relative "test_helper"

# Quorum clients over the 5 independent masters of tests/harness/with-redis -n 5
# (REDIS_URL_1..5, REDIS_PORT_1..5): locks held on every master, contention, refused
# configurations, and an outage of 3 masters, paused with SIGSTOP and always resumed.
class QuorumTest < Minitest::Test
  include RedilockTestHelper

  MASTERS = 5
  # Seconds a master may take per call: long enough for a loaded machine (a master that misses
  # it counts as failed), short enough for the outage test to end soon.
  NODE_TIMEOUT = 1

  def setup
    super
    @ports = (1..MASTERS).map { |k| ENV.fetch("REDIS_PORT_#{k}", nil) }
    skip "REDIS_URL_1..#{MASTERS} are not set: run through tests/harness/with-redis -n #{MASTERS}" unless @ports.all?
    @urls = (1..MASTERS).map { |k| ENV.fetch("REDIS_URL_#{k}") }
  end

  def test_a_lock_is_held_on_every_master_and_unlocked_on_all
    client = quorum_client
    name = unique_name
    lock = client.lock(name, ttl: 10)
    assert_equal MASTERS, holders(name)
    assert_kind_of Float, lock.validity
    assert_operator lock.validity, :>, 0
    assert_operator lock.validity, :<, 10, "less than the TTL: the acquisition and the clock drift take their part"
    assert_kind_of Integer, lock.fence
    assert_operator lock.remaining_ttl, :<=, 10
    assert lock.extend(20)
    assert lock.unlock
    # Unlock returns once a quorum released it; the other masters follow in the background.
    assert eventually { holders(name).zero? }, "released on every master"
    assert_raises(Redilock::NotOwner) { lock.unlock }
    assert_operator client.lock(name, timeout: 0).tap(&:unlock).fence, :>, lock.fence
    assert client.ping
  end

  def test_synchronize_returns_the_blocks_value_and_unlocks
    client = quorum_client
    name = unique_name
    fences = Array.new(2) do
      client.synchronize(name, ttl: 10) do |lock|
        assert_equal MASTERS, holders(name)
        assert_operator lock.validity, :>, 0
        lock.fence
      end
    end
    assert eventually { holders(name).zero? }, "released on every master"
    assert_operator fences.last, :>, fences.first, "fences strictly increase across holders"
  end

  def test_a_lock_held_elsewhere_is_not_acquired
    name = unique_name
    held = quorum_client.lock(name)
    other = quorum_client
    assert_nil other.try_lock(name)
    started = monotonic
    error = assert_raises(Redilock::NotAcquired) { other.lock(name, timeout: 0.3) }
    assert_operator monotonic - started, :<, 0.3 + scaled(2)
    assert_equal Redilock::Native::STATUS_NOT_ACQUIRED, error.status
    held.unlock
    other.lock(name, timeout: scaled(2)).unlock
  end

  def test_unusable_quorum_clients_raise_argument_error
    {
      -> { Redilock::Client.new(@urls.first(2)) } => /at least 3 masters, got 2/,
      -> { Redilock::Client.new([]) } => /at least 3 masters, got 0/,
      -> { Redilock::Client.new([*@urls.first(2), @urls.first]) } => /given twice/,
      -> { Redilock::Client.new(@urls, quorum: 2) } => /more than half of the 5 masters .* got 2/,
      -> { Redilock::Client.new(@urls, quorum: 6) } => /at most all of them, got 6/,
      -> { Redilock::Client.new(@urls, quorum: 2**70) } => /at most all of them/,
      -> { Redilock::Client.new(@urls, quorum: 0) } => /quorum must be a positive Integer \(nil: a majority\)/,
      -> { Redilock::Client.new(@urls, quorum: "3") } => /quorum must be a positive Integer/,
      -> { Redilock::Client.new(@urls, node_timeout: 0) } => /node_timeout must be greater than 0 seconds/,
      -> { Redilock::Client.new(@urls, node_timeout: -1) } => /-1000 ms/,
      -> { Redilock::Client.new([*@urls.first(2), "redis+cluster://127.0.0.1:1"]) } => /must be one server/,
      -> { Redilock::Client.new([*@urls.first(2), nil]) } => /urls\[2\] must be a String, not NilClass/,
      -> { Redilock::Client.new(@url, quorum: 3) } => /give an Array of URLs/,
      -> { Redilock::Client.new(@url, node_timeout: 1) } => /give an Array of URLs/
    }.each do |call, message|
      assert_match message, assert_raises(ArgumentError) { call.call }.message
    end
  end

  # A quorum of every master is allowed too; one master short of it, nothing is acquired.
  def test_a_quorum_of_all_masters
    client = quorum_client(quorum: MASTERS)
    name = unique_name
    client.lock(name).unlock
    redis_at(@ports.last, "SET", name, "another owner")
    assert_nil client.try_lock(name)
  ensure
    redis_at(@ports.last, "DEL", name)
  end

  # With 3 of 5 masters paused, no quorum can answer: the call ends after a node timeout, even
  # one that would wait forever, and the message names every master.
  def test_three_masters_down_raise_quorum_unavailable
    client = quorum_client
    client.ping
    name = unique_name
    down = @ports.last(3)
    paused(down) do
      started = monotonic
      error = assert_raises(Redilock::QuorumUnavailable) { client.lock(name) }
      assert_operator monotonic - started, :<, scaled(NODE_TIMEOUT + 2)
      assert_equal Redilock::Native::STATUS_QUORUM_UNAVAILABLE, error.status
      assert_kind_of Redilock::Error, error
      @ports.each { |port| assert_includes error.message, ":#{port}" }
      assert_raises(Redilock::QuorumUnavailable) { client.ping }
    end
    assert eventually { holders(name).zero? }, "nothing is left held once the masters answer again"
    client.lock(name, timeout: scaled(2)).unlock
  end

  private

  def quorum_client(**options)
    new_client(@urls, node_timeout: scaled(NODE_TIMEOUT), **options)
  end

  # How many masters hold `name`.
  def holders(name)
    @ports.count { |port| redis_at(port, "EXISTS", name) == 1 }
  end

  # Stops the redis-servers on `ports` (SIGSTOP) while the block runs.
  def paused(ports)
    pids = ports.map { |port| Integer(redis_at(port, "INFO", "server")[/^process_id:(\d+)/, 1]) }
    pids.each { |pid| Process.kill(:STOP, pid) }
    yield
  ensure
    pids&.each { |pid| Process.kill(:CONT, pid) }
  end
end
