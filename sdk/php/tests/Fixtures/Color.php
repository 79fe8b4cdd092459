<?php

declare(strict_types=1);

namespace Emitgate\Tests\Fixtures;

/**
 * A backed enum, sent as its value.
 */
enum Color: string
{
    case Red = 'red';
}
