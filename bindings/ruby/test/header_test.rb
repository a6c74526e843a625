# frozen_string_literal: true

require "tmpdir"
require_relative "test_helper"

# The Ruby side of the C ABI agrees with include/redilock.h, the source of truth, where
# generation cannot see to it: the header's numbers are in constants.rb, which
# scripts/ruby-constants generates and `scripts/ruby-constants --check` (make check-header)
# keeps current; the struct layout is checked here, by a C compiler.
class HeaderTest < Minitest::Test
  HEADER_DIR = File.expand_path("../../../include", __dir__)
  HEADER = File.join(HEADER_DIR, "redilock.h")

  def setup
    skip "no redilock.h beside the gem" unless File.file?(HEADER)
  end

  SIGNED = [FFI::Type::INT8, FFI::Type::INT16, FFI::Type::INT32, FFI::Type::INT64, FFI::Type::LONG,
            FFI::Type::LONG_LONG].freeze

  # Offsets, size, and the signedness of the integer fields (max_hold_ms is int64_t since the
  # ABI of 0.2): what the ffi layout must agree on with the C compiler.
  def test_lock_params_layout_matches_the_c_header
    skip "no C compiler" unless system("cc --version", out: File::NULL, err: File::NULL)
    params = Redilock::Native::LockParams
    layout = params.new.layout
    types = params.members.to_h { |field| [field, layout[field].type] }
    integers = types.reject { |_, type| type == FFI::Type::POINTER }.keys
    offsets = params.members.map { |field| %(printf(" #{field} %zu", offsetof(redilock_lock_params, #{field}));) }
    signs = integers.map { |field| %(printf(" #{field}_signed %d", (int)((__typeof__(p.#{field}))-1 < 0));) }
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "layout.c"), <<~C)
        #include <stddef.h>
        #include <stdio.h>
        #include "redilock.h"
        int main(void) {
            redilock_lock_params p;
            (void)p;
            printf("size %zu", sizeof(redilock_lock_params));
            #{offsets.join(' ')}
            #{signs.join(' ')}
            return 0;
        }
      C
      assert system("cc", "-I#{HEADER_DIR}", "-o", File.join(dir, "layout"), File.join(dir, "layout.c")), "compiles"
      expected = IO.popen([File.join(dir, "layout")], &:read).split.each_slice(2).to_h { |k, v| [k, Integer(v)] }
      actual = params.members.to_h { |field| [field.to_s, params.offset_of(field)] }.merge("size" => params.size)
      integers.each { |field| actual["#{field}_signed"] = SIGNED.include?(types[field]) ? 1 : 0 }
      assert_equal expected, actual
    end
  end
end
