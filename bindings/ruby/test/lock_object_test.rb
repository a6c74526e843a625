# frozen_string_literal: true

require "pp"
require "stringio"
require_relative "test_helper"

# Lock as a plain Ruby object: Object#extend next to the TTL extend, and inspect, to_s, pp,
# freeze, dup and the other core methods, none of which may show the secret token.
class LockObjectTest < Minitest::Test
  include RedilockTestHelper

  # A decorator mixed into one lock, the way instrumentation and test doubles do it.
  module Traced
    def self.extended(lock)
      (@extended ||= []) << lock
    end

    def self.extended_locks
      @extended ||= []
    end

    def unlock
      @trace = :unlock
      super
    end

    def trace
      @trace
    end
  end

  module Labelled
    def label
      "labelled #{name}"
    end
  end

  def test_extend_with_modules_is_object_extend
    client = new_client
    lock = client.lock(name = unique_name, ttl: 10)
    other = client.lock(unique_name, ttl: 10)
    sent = scripts_run_during do
      assert_same lock, lock.extend(Traced), "returns the lock, like Object#extend"
      assert_same lock, lock.extend(Labelled, Comparable), "several modules at once"
    end
    assert_equal 0, sent, "mixing a module in sends nothing to Redis"
    assert_includes Traced.extended_locks, lock, "the module's extended hook ran"
    assert_kind_of Traced, lock
    assert_kind_of Labelled, lock
    assert_kind_of Comparable, lock
    assert_equal "labelled #{name}", lock.label
    refute_kind_of Traced, other, "only this object is extended"
    refute_respond_to other, :label

    assert_equal true, lock.extend(30), "a number still resets the TTL"
    assert_operator redis("PTTL", name), :>, 20_000
    assert_equal true, lock.unlock, "the decorator's super reaches Lock#unlock"
    assert_equal :unlock, lock.trace
    other.unlock
  end

  def test_extend_still_takes_every_numeric_ttl
    lock = new_client.lock(name = unique_name, ttl: 2)
    { 30 => 25_000, 40.5 => 35_000, Rational(101, 2) => 45_000 }.each do |ttl, more_than_ms|
      assert_equal true, lock.extend(ttl), "extend(#{ttl.inspect})"
      assert_operator redis("PTTL", name), :>, more_than_ms, "extend(#{ttl.inspect})"
    end
    lock.unlock
  end

  def test_extend_with_anything_else_raises_argument_error_and_sends_nothing
    lock = new_client.lock(name = unique_name, ttl: 10)
    sent = scripts_run_during do
      [[], [nil], ["5"], [:ttl], [{ ttl: 5 }], [5, 6], [Traced, 5], [5, Traced], [Traced, "x"]].each do |args|
        error = assert_raises(ArgumentError, "extend(#{args.inspect[1..-2]})") { lock.extend(*args) }
        assert_match(/takes a TTL \(a number of seconds\) or Modules to mix in \(Object#extend\)/, error.message)
      end
      assert_match(/got no arguments\z/, assert_raises(ArgumentError) { lock.extend }.message)
      assert_match(/got "5"\z/, assert_raises(ArgumentError) { lock.extend("5") }.message)
      assert_match(/got #{Traced}, 5\z/, assert_raises(ArgumentError) { lock.extend(Traced, 5) }.message)
      assert_raises(ArgumentError) { lock.extend(ttl: 5) }
    end
    assert_equal 0, sent
    refute_kind_of Traced, lock, "a refused call mixes nothing in"
    assert_operator redis("PTTL", name), :>, 9_000
    lock.unlock
  end

  def test_extend_with_a_class_fails_like_object_extend
    lock = new_client.lock(unique_name, ttl: 10)
    expected = assert_raises(TypeError) { Object.new.extend(String) }
    assert_equal expected.message, assert_raises(TypeError) { lock.extend(String) }.message
    lock.unlock
  end

  def test_a_frozen_lock_keeps_working
    lock = new_client.lock(name = unique_name, ttl: 2, auto_renew: true)
    assert_same lock, lock.freeze
    assert_predicate lock, :frozen?
    assert_raises(FrozenError) { lock.extend(Labelled) }
    assert_equal true, lock.extend(30)
    assert_operator redis("PTTL", name), :>, 20_000
    refute lock.lost?
    assert_equal true, lock.unlock
    assert_predicate lock, :unlocked?
    assert_equal 0, redis("EXISTS", name)
    assert_includes lock.inspect, "state=unlocked"
  end

  def test_dup_and_clone_keep_their_own_state
    lock = new_client.lock(unique_name, ttl: 10)
    copy = lock.dup
    frozen_copy = lock.clone(freeze: true)
    lock.unlock
    assert_predicate lock, :unlocked?
    refute_predicate copy, :unlocked?
    refute_predicate frozen_copy, :unlocked?
    assert_equal lock.token, copy.token
    assert_raises(Redilock::NotOwner) { frozen_copy.unlock }
    assert_predicate frozen_copy, :unlocked?
  end

  def test_inspect_shows_name_fence_and_state_never_the_token
    client = new_client
    lock = client.lock(name = unique_name, ttl: scaled(0.3), auto_renew: true, on_lost: ->(_) {})
    token = lock.token
    assert_equal %(#<Redilock::Lock name=#{name.inspect} fence=#{lock.fence} state=acquired auto_renew=true>),
                 lock.inspect
    assert_match(/\A#<Redilock::Lock:0x\h+>\z/, lock.to_s)

    displayed = StringIO.new
    lock.display(displayed)
    printed = [lock.inspect, lock.to_s, "#{lock}", lock.pretty_inspect, PP.pp([lock], +""), [lock].inspect,
               { lock => 1 }.to_s, displayed.string, client.inspect,
               assert_raises(NoMethodError) { lock.no_such_method }.message,
               assert_raises(ArgumentError) { lock.extend(lock) }.message]
    printed.each { |text| refute_includes text, token }

    redis("DEL", name)
    assert eventually { lock.lost? }
    assert_includes lock.inspect, "state=lost"
    assert_raises(Redilock::LockLost) { lock.unlock }
    assert_includes lock.inspect, "state=lost", "a loss stays visible after unlock"
    refute_includes lock.inspect, token

    plain = client.lock(unique_name, ttl: 10)
    assert_includes plain.inspect, "state=acquired auto_renew=false"
    plain.unlock
    assert_includes plain.inspect, "state=unlocked auto_renew=false"
  end

  def test_core_object_methods_still_work
    client = new_client
    lock = client.lock(unique_name, ttl: 10)
    assert_equal lock.hash, lock.hash
    assert_equal lock, lock
    refute_equal lock, lock.dup
    assert lock.eql?(lock)
    assert_equal :extend, lock.method(:extend).name
    assert_equal true, lock.public_send(:extend, 20)
    assert_same lock, lock.send(:extend, Labelled)
    assert_respond_to lock, :label
    assert_equal({ lock => :held }, { lock => :held })
    assert_equal true, lock.method(:unlock).call
  end

  # Only these core Object/Kernel methods are redefined; a new one should be deliberate.
  def test_no_other_core_method_is_shadowed
    core = Object.instance_methods + Object.private_instance_methods
    {
      Redilock::Lock => %i[extend initialize initialize_copy inspect],
      Redilock::Client => %i[initialize]
    }.each do |klass, allowed|
      own = klass.instance_methods(false) + klass.private_instance_methods(false)
      assert_equal allowed.sort, (own & core).sort, "#{klass} redefines these core methods"
    end
  end
end
