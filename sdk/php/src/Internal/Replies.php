<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\Binary;
use Emitgate\Code;
use Emitgate\Exception\InternalException;
use Emitgate\Proto\V1\Argument;
use Google\Protobuf\Value;

/**
 * Decodes acks, server replies and socket.data to PHP values: JSON objects
 * as associative arrays, integral numbers within ±(2^53-1) as int, other
 * numbers as float, binary as Binary; exact MessagePack replies with int
 * (an unsigned integer above PHP_INT_MAX as its decimal string), Binary
 * and DateTimeImmutable (UTC) for timestamps.
 *
 * @internal
 */
final class Replies
{
    /** The largest integer a JSON number (a double) holds exactly. */
    private const MAX_EXACT_FLOAT = 9007199254740991;

    /** Nesting accepted in a MessagePack reply (the gateway bounds it lower). */
    private const MAX_DEPTH = 512;

    /** The MessagePack extension type of timestamps. */
    private const TIMESTAMP = -1;

    /**
     * Decodes one ack or server reply.
     *
     * @param Argument|null $argument the reply
     * @return mixed the PHP value
     * @throws InternalException when the gateway sent something undecodable
     */
    public static function argument(?Argument $argument): mixed
    {
        if ($argument === null) {
            return null;
        }
        switch ($argument->getKind()) {
            case 'value':
                return self::value($argument->getValue());
            case 'binary':
                return new Binary($argument->getBinary());
            case 'msgpack':
                return self::msgpack($argument->getMsgpack());
            case 'json':
                return self::json($argument->getJson());
        }
        return null;
    }

    /**
     * Decodes a google.protobuf.Value.
     *
     * @param Value|null $value the value
     * @return mixed the PHP value
     */
    public static function value(?Value $value): mixed
    {
        if ($value === null) {
            return null;
        }
        if ($value->getKind() === 'number_value') {
            return self::number($value->getNumberValue());
        }
        return self::json(self::quietly(static fn (): string => $value->serializeToJsonString()));
    }

    /**
     * Runs $f with deprecations silenced: the pure-PHP protobuf runtime (3.x)
     * sets a dynamic property whenever a map field is iterated, which PHP
     * 8.2 reports as deprecated, and Struct values and handshakes are maps.
     *
     * @template T
     * @param callable(): T $f
     * @return T
     */
    public static function quietly(callable $f): mixed
    {
        $level = error_reporting();
        error_reporting($level & ~E_DEPRECATED);
        try {
            return $f();
        } finally {
            error_reporting($level);
        }
    }

    /**
     * Decodes JSON text with the number rule of value().
     *
     * @param string $text one JSON value
     * @return mixed the PHP value
     * @throws InternalException when the text is not JSON
     */
    public static function json(string $text): mixed
    {
        try {
            $decoded = json_decode($text, true, self::MAX_DEPTH, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw self::undecodable('JSON', $e->getMessage());
        }
        return self::numbers($decoded);
    }

    /**
     * Decodes exactly one MessagePack value.
     *
     * @param string $bytes the encoding
     * @return mixed the PHP value
     * @throws InternalException when the bytes are not one MessagePack value
     */
    public static function msgpack(string $bytes): mixed
    {
        $offset = 0;
        $value = self::read($bytes, $offset, 0);
        if ($offset !== strlen($bytes)) {
            throw self::undecodable('MessagePack', 'trailing bytes');
        }
        return $value;
    }

    private static function number(float $n): int|float
    {
        if (floor($n) === $n && abs($n) <= self::MAX_EXACT_FLOAT) {
            return (int) $n;
        }
        return $n;
    }

    /** json_decode gives int for integral literals; floats keep the number rule. */
    private static function numbers(mixed $v): mixed
    {
        if (is_float($v)) {
            return self::number($v);
        }
        if (is_array($v)) {
            foreach ($v as $k => $item) {
                $v[$k] = self::numbers($item);
            }
        }
        return $v;
    }

    private static function undecodable(string $what, string $why): InternalException
    {
        return new InternalException(Code::INTERNAL, "the gateway sent a reply that is not $what: $why", true);
    }

    private static function take(string $bytes, int &$offset, int $n): string
    {
        if ($n < 0 || $offset + $n > strlen($bytes)) {
            throw self::undecodable('MessagePack', 'truncated');
        }
        $chunk = substr($bytes, $offset, $n);
        $offset += $n;
        return $chunk;
    }

    private static function uint(string $bytes, int &$offset, int $n): int
    {
        $raw = self::take($bytes, $offset, $n);
        return match ($n) {
            1 => ord($raw),
            2 => unpack('n', $raw)[1],
            4 => unpack('N', $raw)[1],
            default => unpack('J', $raw)[1], // signed when above PHP_INT_MAX
        };
    }

    private static function read(string $bytes, int &$offset, int $depth): mixed
    {
        if ($depth > self::MAX_DEPTH) {
            throw self::undecodable('MessagePack', 'nested too deeply');
        }
        $c = ord(self::take($bytes, $offset, 1));
        if ($c <= 0x7f) {
            return $c;
        }
        if ($c >= 0xe0) {
            return $c - 0x100;
        }
        if (($c & 0xf0) === 0x80) {
            return self::map($bytes, $offset, $c & 0x0f, $depth);
        }
        if (($c & 0xf0) === 0x90) {
            return self::list($bytes, $offset, $c & 0x0f, $depth);
        }
        if (($c & 0xe0) === 0xa0) {
            return self::take($bytes, $offset, $c & 0x1f);
        }
        switch ($c) {
            case 0xc0:
                return null;
            case 0xc2:
                return false;
            case 0xc3:
                return true;
            case 0xc4:
            case 0xc5:
            case 0xc6:
                $n = self::uint($bytes, $offset, 1 << ($c - 0xc4));
                return new Binary(self::take($bytes, $offset, $n));
            case 0xc7:
            case 0xc8:
            case 0xc9:
                $n = self::uint($bytes, $offset, 1 << ($c - 0xc7));
                return self::ext($bytes, $offset, $n);
            case 0xca:
                return (float) unpack('G', self::take($bytes, $offset, 4))[1];
            case 0xcb:
                return unpack('E', self::take($bytes, $offset, 8))[1];
            case 0xcc:
            case 0xcd:
            case 0xce:
                return self::uint($bytes, $offset, 1 << ($c - 0xcc));
            case 0xcf:
                $u = self::uint($bytes, $offset, 8);
                return $u >= 0 ? $u : sprintf('%u', $u);
            case 0xd0:
                return unpack('c', self::take($bytes, $offset, 1))[1];
            case 0xd1:
                $u = self::uint($bytes, $offset, 2);
                return $u >= 0x8000 ? $u - 0x10000 : $u;
            case 0xd2:
                $u = self::uint($bytes, $offset, 4);
                return $u >= 0x80000000 ? $u - 0x100000000 : $u;
            case 0xd3:
                return self::uint($bytes, $offset, 8); // 'J' reads two's complement
            case 0xd4:
            case 0xd5:
            case 0xd6:
            case 0xd7:
            case 0xd8:
                return self::ext($bytes, $offset, 1 << ($c - 0xd4));
            case 0xd9:
            case 0xda:
            case 0xdb:
                return self::take($bytes, $offset, self::uint($bytes, $offset, 1 << ($c - 0xd9)));
            case 0xdc:
            case 0xdd:
                return self::list($bytes, $offset, self::uint($bytes, $offset, 2 << ($c - 0xdc)), $depth);
            case 0xde:
            case 0xdf:
                return self::map($bytes, $offset, self::uint($bytes, $offset, 2 << ($c - 0xde)), $depth);
        }
        throw self::undecodable('MessagePack', sprintf('unknown type byte 0x%02x', $c));
    }

    /** @return list<mixed> */
    private static function list(string $bytes, int &$offset, int $n, int $depth): array
    {
        $out = [];
        for ($i = 0; $i < $n; $i++) {
            $out[] = self::read($bytes, $offset, $depth + 1);
        }
        return $out;
    }

    /** @return array<int|string, mixed> */
    private static function map(string $bytes, int &$offset, int $n, int $depth): array
    {
        $out = [];
        for ($i = 0; $i < $n; $i++) {
            $key = self::read($bytes, $offset, $depth + 1);
            if (!is_string($key) && !is_int($key)) {
                throw self::undecodable('MessagePack', 'a map key is neither a string nor an integer');
            }
            $out[$key] = self::read($bytes, $offset, $depth + 1);
        }
        return $out;
    }

    private static function ext(string $bytes, int &$offset, int $n): \DateTimeImmutable
    {
        $type = unpack('c', self::take($bytes, $offset, 1))[1];
        $data = self::take($bytes, $offset, $n);
        if ($type !== self::TIMESTAMP) {
            throw self::undecodable('MessagePack', "extension type $type");
        }
        if ($n === 4) {
            [$seconds, $nanos] = [unpack('N', $data)[1], 0];
        } elseif ($n === 8) {
            $hi = unpack('N', substr($data, 0, 4))[1];
            $lo = unpack('N', substr($data, 4, 4))[1];
            $seconds = (($hi & 0x3) << 32) | $lo;
            $nanos = $hi >> 2;
        } elseif ($n === 12) {
            $nanos = unpack('N', substr($data, 0, 4))[1];
            $seconds = unpack('J', substr($data, 4, 8))[1];
        } else {
            throw self::undecodable('MessagePack', "a timestamp of $n bytes");
        }
        $micros = intdiv($nanos, 1000);
        $utc = new \DateTimeZone('UTC');
        $time = \DateTimeImmutable::createFromFormat('U u', sprintf('%d %06d', $seconds, $micros), $utc);
        if ($time === false) {
            throw self::undecodable('MessagePack', 'a timestamp out of range');
        }
        return $time;
    }
}
