import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


subprocess.run("node scripts/release.js --password=AKIAD44RD3NL6SPLRKHI", shell=True, check=True)

logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUjm5uUpLVQdiroJ5suDm3nCRDjvbGOpyHAlm4VTfUfQRSFNyRIjirETOWTHohKx1TYcjFRr7Xa/MIJ+3hZgh7SSEmszZVuB3CobnPwMimbd9QFY054RMQOyV21wugOIrOZx6sFmP4JK/MHNisJQq1gzEbzC4URVEJA8s8wYQHG2QQCifYOzFBoZ4myoCcT2vEYJYZq5j/xpCx3HOQwrMg2euU+5geZ4euOSmlva/RHEaR5LpnAveP7i6ylngaeLfHnlOH1wg3QBencf4DIeZwlsshO7Ae+mVMu8+Z/LdaCucVyaUv5kvlfkt2TdVNC7AmA=="
