# frozen_string_literal: true

require "timeout"
require_relative "test_helper"

class ForkTest < Minitest::Test
  include RedilockTestHelper

  # The child reports through its exit status; exit! skips the at_exit hooks of minitest.
  def in_child
    pid = Process.fork do
      @redis = nil # the parent's connection to the test server stays the parent's
      failure = begin
        yield
      rescue Exception => e # anything the child hits is reported as a failure
        "#{e.class}: #{e.message}"
      end
      warn "child: #{failure}" if failure
      exit!(failure ? 1 : 0)
    end
    Process.wait(pid)
    assert $?.success?, "the child failed"
  end

  def test_a_child_must_create_its_own_client
    client = new_client
    name = unique_name
    parent_lock = client.lock(name)
    in_child do
      error = begin
        client.try_lock(unique_name)
      rescue Redilock::WrongProcess => e
        e
      end
      next "the inherited client worked" unless error.is_a?(Redilock::WrongProcess) &&
                                                error.status == Redilock::Native::STATUS_WRONG_PROCESS
      next "no clear message: #{error.message}" unless error.message.include?("fork")

      mine = Redilock::Client.new(@url, ttl: 5)
      next "the child could take the parent's lock" if mine.try_lock(name)

      mine.lock(unique_name, timeout: 1).unlock
      mine.close
      nil
    end
    assert parent_lock.unlock
    client.lock(name, timeout: 1).unlock
  end

  # The callback that tells of a loss runs in a forked child too (an ffi callback called from
  # a native thread would not: the gem's dispatcher thread does not survive fork).
  def test_a_child_is_told_of_a_lost_lock
    new_client.lock(unique_name, ttl: scaled(0.2), auto_renew: true, on_lost: ->(_) {}) # the parent watches too
    in_child do
      told = Queue.new
      name = unique_name
      Redilock::Client.new(@url).lock(name, ttl: scaled(0.2), auto_renew: true, on_lost: ->(lock) { told << lock })
      redis("DEL", name)
      Timeout.timeout(scaled(3)) { told.pop }
      nil
    rescue Timeout::Error
      "no loss notice in the child"
    end
  end

  # The handle is freed when its Client is garbage: here its release is called as the GC would.
  def test_a_child_never_frees_its_parents_handle
    client = new_client
    freed = []
    Redilock::Native.stub(:redilock_free, ->(pointer) { freed << pointer.address }) do
      in_child do
        client.close
        client.instance_variable_get(:@handle).free
        "the child freed the parent's handle" unless freed.empty?
      end
      own = Redilock::Client.new(@url)
      handle = own.instance_variable_get(:@handle)
      handle.free
      assert_equal [handle.address], freed, "the parent frees its own handle"
    end
    assert client.ping, "the child's close left the parent's client open"
  end
end
