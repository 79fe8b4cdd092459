<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\Exception\InvalidArgumentException;

/**
 * Checks of the text fields of requests.
 *
 * @internal
 */
final class Texts
{
    /**
     * Checks that a value is UTF-8 text, as protobuf strings must be.
     *
     * @param string $value the text
     * @param string $field its field path, for the error
     * @throws InvalidArgumentException when it is not valid UTF-8
     */
    public static function check(string $value, string $field): void
    {
        if (preg_match('//u', $value) !== 1) {
            throw InvalidArgumentException::local($field, 'is not valid UTF-8 text');
        }
    }

    /**
     * Appends room names to a list, without duplicates.
     *
     * @param list<string> $current the rooms so far
     * @param array<int, mixed> $rooms strings or lists of strings
     * @param string $field the field path, for errors
     * @return list<string> the rooms
     * @throws InvalidArgumentException when a room is not a UTF-8 string
     */
    public static function rooms(array $current, array $rooms, string $field): array
    {
        // The common call, to($name) or to($list) on a scope without rooms:
        // one UTF-8 check of the names joined by "\n" (valid only if each
        // name is), instead of one call per name.
        if ($current === [] && count($rooms) === 1) {
            $names = is_array($rooms[0]) ? $rooms[0] : $rooms;
            if (array_is_list($names) && self::allStrings($names) && preg_match('//u', implode("\n", $names)) === 1) {
                return count($names) > 1 ? array_values(array_unique($names)) : $names;
            }
        }
        $seen = array_fill_keys($current, true);
        $out = $current;
        array_walk_recursive($rooms, static function (mixed $room) use (&$seen, &$out, $field): void {
            if (!is_string($room)) {
                throw InvalidArgumentException::local(
                    $field,
                    'room names must be strings, got ' . get_debug_type($room)
                );
            }
            self::check($room, $field);
            if (!isset($seen[$room])) {
                $seen[$room] = true;
                $out[] = $room;
            }
        });
        return $out;
    }

    /**
     * @param list<mixed> $values
     */
    private static function allStrings(array $values): bool
    {
        foreach ($values as $v) {
            if (!is_string($v)) {
                return false;
            }
        }
        return true;
    }
}
