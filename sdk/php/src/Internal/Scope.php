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
     * Wire::scopeBytes() of this scope, for an emit (key 0) and a broadcast
     * (key 1), filled on first use by the Publisher.
     *
     * @var array<int, array{0: string, 1: string}>
     */
    public array $wire = [];

    /**
     * @param string $target the configured target ('' = default)
     * @param string $namespace the Socket.IO namespace
     * @param list<string> $rooms the rooms to reach
     * @param list<string> $except the rooms to skip
     * @param bool $volatile the volatile flag
     * @param bool|null $compress the compress flag, null when unset
     * @param string $idempotencyKey the idempotency key of the call ('' = none)
     */
    public function __construct(
        public readonly string $target = '',
        public readonly string $namespace = '/',
        public readonly array $rooms = [],
        public readonly array $except = [],
        public readonly bool $volatile = false,
        public readonly ?bool $compress = null,
        public readonly string $idempotencyKey = '',
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
        return new self(
            $changes['target'] ?? $this->target,
            $changes['namespace'] ?? $this->namespace,
            $changes['rooms'] ?? $this->rooms,
            $changes['except'] ?? $this->except,
            $changes['volatile'] ?? $this->volatile,
            array_key_exists('compress', $changes) ? $changes['compress'] : $this->compress,
            $changes['idempotencyKey'] ?? $this->idempotencyKey,
        );
    }
}
