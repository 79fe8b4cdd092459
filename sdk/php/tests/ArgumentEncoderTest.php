<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Binary;
use Emitgate\Internal\ArgumentEncoder;
use Emitgate\Internal\MapNode;
use Emitgate\Internal\Msgpack;
use Emitgate\JsonObject;
use Emitgate\RawJson;
use PHPUnit\Framework\TestCase;

/**
 * How PHP values become Argument messages, byte for byte. The end-to-end
 * tests show what clients receive; these pin the encodings.
 */
final class ArgumentEncoderTest extends TestCase
{
    public function testKindsChosenPerValue(): void
    {
        $this->assertSame('binary', ArgumentEncoder::encode(new Binary("\x01"), 'a')->getKind());
        $this->assertSame('json', ArgumentEncoder::encode(new RawJson('{"a":1}'), 'a')->getKind());
        $this->assertSame('json', ArgumentEncoder::encode(['a' => [1, 2.5]], 'a')->getKind());
        $this->assertSame('msgpack', ArgumentEncoder::encode(['a' => new Binary('x')], 'a')->getKind());
        $this->assertSame('json', ArgumentEncoder::encode(9007199254740992, 'a')->getKind());
        $this->assertSame('msgpack', ArgumentEncoder::encode(9007199254740993, 'a')->getKind());
        $this->assertSame('msgpack', ArgumentEncoder::encode([-9007199254740993], 'a')->getKind());
    }

    public function testJsonText(): void
    {
        $cases = [
            '[]' => [],
            '{}' => new JsonObject(),
            '{"0":"a"}' => new JsonObject(['a']),
            '{"k":{}}' => ['k' => new \stdClass()],
            '{"1":"x"}' => [1 => 'x'],
            '[1.0,0.1,-0.0]' => [1.0, 0.1, -0.0],
            '"é/🎉\u0000"' => "é/🎉\0",
            '{"raw":[true]}' => ['raw' => new RawJson('[true]')],
            'null' => null,
        ];
        foreach ($cases as $json => $value) {
            $this->assertSame($json, ArgumentEncoder::encode($value, 'a')->getJson(), $json);
        }
    }

    public function testMsgpackMatchesTheReferenceEmitter(): void
    {
        // Vectors of notepack.io 3.0.1, the @socket.io/redis-emitter encoder.
        $this->assertSame('c403010203', bin2hex(Msgpack::encode(new Binary("\x01\x02\x03"))));
        $this->assertSame('81a161c3', bin2hex(Msgpack::encode(new MapNode([['a', true]]))));
        $this->assertSame('91cb3ff8000000000000', bin2hex(Msgpack::encode([1.5])));
        $this->assertSame('c0', bin2hex(Msgpack::encode(null)));
        $this->assertSame('a16d', bin2hex(Msgpack::encode('m')));
    }

    public function testMsgpackIntegersUseTheSmallestForm(): void
    {
        $cases = [
            '00' => 0, '7f' => 127, 'cc80' => 128, 'ccff' => 255, 'cd0100' => 256, 'cdffff' => 65535,
            'ce00010000' => 65536, 'ceffffffff' => 4294967295, 'cf0000000100000000' => 4294967296,
            'cf7fffffffffffffff' => PHP_INT_MAX, 'ff' => -1, 'e0' => -32, 'd0df' => -33, 'd080' => -128,
            'd1ff7f' => -129, 'd18000' => -32768, 'd2ffff7fff' => -32769, 'd280000000' => -2147483648,
            'd3ffffffff7fffffff' => -2147483649, 'd38000000000000000' => PHP_INT_MIN,
        ];
        foreach ($cases as $hex => $int) {
            $this->assertSame($hex, bin2hex(Msgpack::encode($int)), (string) $int);
        }
    }

    public function testMsgpackLengthsUseTheSmallestForm(): void
    {
        $this->assertSame('bf', bin2hex(substr(Msgpack::encode(str_repeat('a', 31)), 0, 1)));
        $this->assertSame('d920', bin2hex(substr(Msgpack::encode(str_repeat('a', 32)), 0, 2)));
        $this->assertSame('da0100', bin2hex(substr(Msgpack::encode(str_repeat('a', 256)), 0, 3)));
        $this->assertSame('db00010000', bin2hex(substr(Msgpack::encode(str_repeat('a', 65536)), 0, 5)));
        $medium = new Binary(str_repeat('a', 65535));
        $this->assertSame('c5ffff', bin2hex(substr(Msgpack::encode($medium), 0, 3)));
        $big = new Binary(str_repeat('a', 65536));
        $this->assertSame('c600010000', bin2hex(substr(Msgpack::encode($big), 0, 5)));
        $this->assertSame('9f', bin2hex(substr(Msgpack::encode(array_fill(0, 15, 0)), 0, 1)));
        $this->assertSame('dc0010', bin2hex(substr(Msgpack::encode(array_fill(0, 16, 0)), 0, 3)));
        $this->assertSame('dd00010000', bin2hex(substr(Msgpack::encode(array_fill(0, 65536, 0)), 0, 5)));
        $map = new MapNode(array_map(static fn (int $i): array => ["k$i", $i], range(1, 16)));
        $this->assertSame('de0010', bin2hex(substr(Msgpack::encode($map), 0, 3)));
    }

    public function testNestedValuesInMsgpack(): void
    {
        $argument = ArgumentEncoder::encode(
            [
                'b' => new Binary("\xff"),
                'list' => [1, 'x'],
                'obj' => new JsonObject(),
                'raw' => new RawJson('{"z":[]}'),
            ],
            'args[0]'
        );

        $this->assertSame(
            '84' . 'a162c401ff' . 'a46c697374' . '9201a178' . 'a36f626a80' . 'a3726177' . '81a17a90',
            bin2hex($argument->getMsgpack())
        );
    }

    public function testObjectsAreCutOffWhenNestedTooDeep(): void
    {
        $loop = new \stdClass();
        $loop->self = $loop;

        $this->expectException(\Emitgate\Exception\InvalidArgumentException::class);
        $this->expectExceptionMessage('nested more than');
        ArgumentEncoder::encode($loop, 'args[0]');
    }
}
