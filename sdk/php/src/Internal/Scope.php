<?php

declare(strict_types=1);

namespace Emitgate\Internal;

/**
 * The immutable state behind the fluent operators.
 *
 * @internal
 */
final class Scope
{
    /**
     * @param string $target the configured target ('' = default)
     * @param string $namespace the Socket.IO namespace
     * @param list<string> $rooms the rooms to reach
     * @param list<string> $except the rooms to skip
     * @param bool $volatile the volatile flag
     * @param bool|null $compress the compress flag, null when unset
     */
    public function __construct(
        public readonly string $target = '',
        public readonly string $namespace = '/',
        public readonly array $rooms = [],
        public readonly array $except = [],
        public readonly bool $volatile = false,
        public readonly ?bool $compress = null,
    ) {
    }

    /**
     * Returns a copy with some properties changed.
     *
     * @param array<string, mixed> $changes property name => new value
     * @return self the copy
     */
    public function with(array $changes): self
    {
        return new self(...array_merge(get_object_vars($this), $changes));
    }
}
