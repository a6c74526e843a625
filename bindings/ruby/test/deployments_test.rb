# frozen_string_literal: true

require "open3"
require_relative "test_helper"

# Redis Cluster and Sentinel, through the URLs Client.new takes as they are. The round trips
# use the cluster and the Sentinel-watched primary of
# `tests/harness/with-redis --cluster --sentinel` (REDIS_CLUSTER_URL, REDIS_SENTINEL_URL) and
# are skipped without them; the URL checks need no server.
class DeploymentsTest < Minitest::Test
  include RedilockTestHelper

  # Each lock lives on the master of its name's slot: 30 names held at once spread over the
  # masters, each on one, holding its owner's token; once released, none is left.
  def test_cluster_locks_spread_over_the_masters
    client = new_client(cluster_url)
    prefix = "#{unique_name("cluster")}:"
    names = Array.new(30) { |i| "#{prefix}#{i}" }
    synchronize_all(client, names) do |locks|
      locks.each { |lock| assert_operator lock.fence, :>, 0, "the fence of #{lock.name}" }
      by_master = cluster_masters.to_h { |port| [port, scan(port, "#{prefix}*")] }
      assert_equal names.sort, by_master.values.flatten.sort, "each lock on one master: #{by_master}"
      assert_operator by_master.values.count(&:any?), :>, 1, "the locks spread over the masters: #{by_master}"
      locks.each do |lock|
        port = by_master.find { |_, keys| keys.include?(lock.name) }.first
        assert_equal lock.token, redis_at(port, "GET", lock.name), "#{lock.name} holds its token on #{port}"
      end
    end
    cluster_masters.each { |port| assert_empty scan(port, "#{prefix}*"), "master #{port} after the locks' release" }
  end

  # A held lock is not acquired, whichever master holds it: try_lock gives nil, and a lock
  # call with timeout 0 raises NotAcquired.
  def test_cluster_a_held_lock_is_not_acquired
    holder = new_client(cluster_url)
    other = new_client(cluster_url)
    lock_on_every_master(holder).each_value do |lock|
      assert_nil other.try_lock(lock.name)
      assert_raises(Redilock::NotAcquired) { other.lock(lock.name, timeout: 0) }
      lock.unlock
      other.synchronize(lock.name, timeout: 0) { |taken| assert_operator taken.fence, :>, lock.fence }
    end
  end

  # A waiter is handed the lock as soon as the holder unlocks, on every master: it listens for
  # wake-ups on each. Its retry interval is an hour and the holder's TTL outlasts the wait, so
  # only the wake-up explains the hand-over.
  def test_cluster_waiter_is_woken_on_every_master
    holder = new_client(cluster_url)
    waiter = new_client(cluster_url, retry_interval: 3600)
    lock_on_every_master(holder).each do |port, lock|
      waiting = Thread.new { waiter.lock(lock.name, timeout: scaled(60)) }
      assert eventually(20) { queue_at(port, lock.name).size == 1 }, "the waiter queues on master #{port}"
      unlocked = monotonic
      lock.unlock
      assert waiting.join(scaled(20)), "master #{port}: the waiter was handed #{lock.name} after the unlock"
      handed = waiting.value
      assert_operator monotonic - unlocked, :<, scaled(20)
      assert_operator handed.fence, :>, lock.fence
      handed.unlock
      assert eventually(20) { redis_at(port, "EXISTS", lock.name).zero? && queue_at(port, lock.name).empty? }
    end
  end

  # The client finds the primary through the Sentinels: the lock is taken there, extended,
  # read and given back.
  def test_sentinel_lock_extend_remaining_ttl_unlock
    client = new_client(sentinel_url)
    name = unique_name("sentinel")
    lock = client.lock(name, ttl: scaled(10))
    assert_operator lock.fence, :>, 0
    assert_equal lock.token, redis_at(sentinel_primary, "GET", name)
    assert_equal true, lock.extend(scaled(60))
    assert_includes((scaled(10)..scaled(60)), lock.remaining_ttl)
    assert_equal true, lock.unlock
    assert_equal 0, redis_at(sentinel_primary, "EXISTS", name)
    assert_raises(Redilock::NotOwner) { lock.remaining_ttl }

    fence = client.synchronize(name) do |held|
      assert_equal held.token, redis_at(sentinel_primary, "GET", name)
      held.fence
    end
    assert_operator fence, :>, lock.fence
    assert_equal 0, redis_at(sentinel_primary, "EXISTS", name)
  end

  # A waiter on the primary the Sentinels name is woken by the unlock (its retry interval is
  # an hour, the holder's TTL outlasts the wait).
  def test_sentinel_waiter_is_woken_by_the_unlock
    holder = new_client(sentinel_url)
    waiter = new_client(sentinel_url, retry_interval: 3600)
    name = unique_name("sentinel")
    lock = holder.lock(name, ttl: scaled(60))
    assert_nil waiter.try_lock(name)
    waiting = Thread.new { waiter.synchronize(name, timeout: scaled(60), &:fence) }
    assert eventually(20) { queue_at(sentinel_primary, name).size == 1 }, "the waiter queues"
    lock.unlock
    assert waiting.join(scaled(20)), "the waiter was handed the lock after the unlock"
    assert_operator waiting.value, :>, lock.fence
    assert eventually(20) { redis_at(sentinel_primary, "EXISTS", name).zero? }
  end

  # A multi-host URL the library cannot use raises ArgumentError saying why, with the password
  # masked: in the credentials (u:***@) and in the Sentinels' sentinel_password.
  def test_bad_multi_host_urls_raise_argument_error_with_the_password_masked
    {
      "redis+cluster://u:s3cret@127.0.0.1:1,,127.0.0.1:2" => ["redis+cluster://u:***@127.0.0.1:1,,127.0.0.1:2",
                                                              "an empty host"],
      "redis+sentinel://u:s3cret@127.0.0.1:1" => ["redis+sentinel://u:***@127.0.0.1:1", "no primary name"],
      "redis+sentinel://127.0.0.1:1,127.0.0.1:2?sentinel_password=s3cret" =>
        ["redis+sentinel://127.0.0.1:1,127.0.0.1:2?sentinel_password=***", "no primary name"],
      "redis+sentinel://u:s3cret@127.0.0.1:1/mymaster/x" => ["redis+sentinel://u:***@127.0.0.1:1/mymaster/x",
                                                             "no database number"],
      "redis+cluster://u:s3cret@127.0.0.1:1/3" => ["redis+cluster://u:***@127.0.0.1:1/3", "one database"],
      "rediss+cluster://u:s3cret@127.0.0.1:1,,127.0.0.1:2" => ["rediss+cluster://u:***@127.0.0.1:1,,127.0.0.1:2",
                                                               "an empty host"]
    }.each do |url, (masked, why)|
      error = assert_raises(ArgumentError, masked) { Redilock::Client.new(url) }
      assert_includes error.message, masked
      assert_includes error.message, why
      refute_includes error.message, "s3cret"
    end
  end

  private

  def cluster_url
    ENV.fetch("REDIS_CLUSTER_URL") do
      skip "REDIS_CLUSTER_URL is not set: run through tests/harness/with-redis --cluster, as make test-ruby does"
    end
  end

  # The masters' ports: REDIS_CLUSTER_PORTS lists them first, then one replica of each.
  def cluster_masters
    ports = ENV.fetch("REDIS_CLUSTER_PORTS").split
    ports.first(ports.size / 2)
  end

  def sentinel_url
    ENV.fetch("REDIS_SENTINEL_URL") do
      skip "REDIS_SENTINEL_URL is not set: run through tests/harness/with-redis --sentinel, as make test-ruby does"
    end
  end

  def sentinel_primary
    ENV.fetch("REDIS_SENTINEL_PRIMARY_PORT")
  end

  # Holds every lock of `names` while the block runs (given the locks), one synchronize
  # inside the other.
  def synchronize_all(client, names, locks = [], &block)
    return yield(locks) if names.empty?

    client.synchronize(names.first) { |lock| synchronize_all(client, names.drop(1), locks + [lock], &block) }
  end

  # One lock taken with `client` on each master, by the master's port. Their TTL outlasts
  # every wait of the tests.
  def lock_on_every_master(client)
    prefix = unique_name("cluster")
    locks = {}
    (0...1000).each do |i|
      lock = client.lock("#{prefix}:#{i}", ttl: scaled(60), timeout: 0)
      port = master_of(lock.name)
      if locks.key?(port)
        lock.unlock
      else
        locks[port] = lock
      end
      return locks if locks.size == cluster_masters.size
    end
    flunk "no name of 1000 lives on each of the #{cluster_masters.size} masters"
  end

  # The port of the one master that holds `key`. SCAN, not EXISTS: a node refuses a key of
  # another node's slot (MOVED).
  def master_of(key)
    ports = cluster_masters.select { |port| scan(port, glob_escape(key)).include?(key) }
    assert_equal 1, ports.size, "#{key} is on one master: #{ports}"
    ports.first
  end

  # The keys matching `pattern` on the node at `port`, as redis-cli --scan lists them.
  def scan(port, pattern)
    output, status = Open3.capture2("redis-cli", "-p", port.to_s, "--scan", "--pattern", pattern)
    assert status.success?, "redis-cli -p #{port} --scan"
    output.lines(chomp: true)
  end

  def glob_escape(key)
    key.gsub(/[*?\[\]\\]/) { |c| "\\#{c}" }
  end

  # The tokens waiting for lock `name` on the node at `port` (see RedilockTestHelper#queue).
  def queue_at(port, name)
    redis_at(port, "KEYS", "redilock:queue:*:#{glob_escape(name)}").flat_map do |key|
      redis_at(port, "LRANGE", key, 0, -1)
    end
  end
end
