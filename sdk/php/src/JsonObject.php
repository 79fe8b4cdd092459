<?php

declare(strict_types=1);

namespace Emitgate;

/**
 * Forces a value to be sent as a JSON object (`{}`), even when it is empty or
 * has the keys 0, 1, 2... that would make a PHP array a JSON list.
 *
 * The argument rule: a PHP list array (`array_is_list()`, including `[]`) is
 * a JSON array; any other array, a `stdClass` and a JsonObject are JSON
 * objects. So `[]` is sent as `[]` and `new JsonObject()` (or
 * `new \stdClass()`) as `{}`.
 */
final class JsonObject
{
    /** @var array<array-key, mixed> */
    private array $properties;

    /**
     * @param array<array-key, mixed>|object $properties the object's properties; an
     *        object gives its public properties
     */
    public function __construct(array|object $properties = [])
    {
        $this->properties = is_array($properties) ? $properties : get_object_vars($properties);
    }

    /**
     * Returns the properties of the object.
     *
     * @return array<array-key, mixed> the properties, keyed by name
     */
    public function properties(): array
    {
        return $this->properties;
    }
}
