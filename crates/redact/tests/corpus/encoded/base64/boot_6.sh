#!/bin/sh
# decoded at boot
echo 'U0VOREdSSURfS0VZPVNHLkJOTm9VcDJ6MTRWZkd4Z1A5UWljbDUuMzdES2pRMEpITEd4SmZ5WUdPc1gwVTdwNGdLUEVPOTFWLTljZ3Vkek03ZA==' | base64 -d > /run/app.env
