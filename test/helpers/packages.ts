/** The event packages for tests that read SIP bodies without a SIMPLE server (the upstream side). */
import { DialogPackage } from '../../src/simple/dialog-package.js';
import { PackageRegistry } from '../../src/simple/package-registry.js';
import { PresencePackage, type ViewSource } from '../../src/simple/presence-package.js';

const NO_VIEWS: ViewSource = {
  view(): never {
    throw new Error('these packages only read bodies; nothing renders here');
  },
};

/** presence and dialog, registered as the SIMPLE server registers them. */
export function bodyPackages(): PackageRegistry {
  const packages = new PackageRegistry();
  packages.register(new PresencePackage(NO_VIEWS));
  packages.register(new DialogPackage(NO_VIEWS));
  return packages;
}
